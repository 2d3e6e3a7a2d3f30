"""Location: where peer programs meet (FHIR Location), with its address and contact points."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import locations as domain
from api.domain.locations import LocationMode, LocationStatus
from api.integrations.fhir.resources.locations import to_fhir_location
from api.schema.coding import Coding, CodingInput
from api.schema.connection import Connection, connection_from_page
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import parse_id, parse_optional_id, to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.services import locations
from api.services.filters import LocationFilter
from api.services.pagination import Keyset, PageRequest


@strawberry.type(description="A time range; dates as their source wrote them (FHIR Period).")
class Period:
    start: str | None
    end: str | None

    @classmethod
    def of(cls, period: domain.Period | None) -> Period | None:
        return cls(start=period.start, end=period.end) if period else None


@strawberry.input(description="A time range (FHIR Period): FHIR dates or dateTimes.")
class PeriodInput:
    start: str | None = None
    end: str | None = None

    def to_domain(self) -> domain.Period:
        return domain.Period(self.start, self.end)


@strawberry.type(description="A postal address (FHIR Address).")
class Address:
    use: str | None
    type: str | None
    text: str | None
    lines: list[str]
    city: str | None
    district: str | None
    state: str | None
    postal_code: str | None
    country: str | None
    period: Period | None


@strawberry.input(description="A postal address (FHIR Address): use home|work|temp|old|billing.")
class AddressInput:
    lines: list[str] = strawberry.field(default_factory=list)
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    text: str | None = None
    use: str | None = None
    type: str | None = None
    period: PeriodInput | None = None

    def to_domain(self) -> domain.Address:
        return domain.Address(
            use=self.use,
            type=self.type,
            text=self.text,
            lines=tuple(self.lines),
            city=self.city,
            district=self.district,
            state=self.state,
            postal_code=self.postal_code,
            country=self.country,
            period=self.period.to_domain() if self.period else None,
        )


@strawberry.type(description="A phone number, email or web address (FHIR ContactPoint).")
class ContactPoint:
    system: str | None
    value: str | None
    use: str | None
    rank: int | None
    period: Period | None


@strawberry.input(description="FHIR ContactPoint: system phone|fax|email|pager|url|sms|other.")
class ContactPointInput:
    system: str | None = None
    value: str | None = None
    use: str | None = None
    rank: int | None = None
    period: PeriodInput | None = None

    def to_domain(self) -> domain.ContactPoint:
        return domain.ContactPoint(
            self.system,
            self.value,
            self.use,
            self.rank,
            self.period.to_domain() if self.period else None,
        )


@strawberry.type(description="WGS84 coordinates (FHIR Location.position).")
class GeoPosition:
    longitude: float
    latitude: float
    altitude: float | None


@strawberry.input(description="WGS84 coordinates (FHIR Location.position).")
class GeoPositionInput:
    longitude: float
    latitude: float
    altitude: float | None = None

    def to_domain(self) -> domain.Position:
        return domain.Position(self.longitude, self.latitude, self.altitude)


@strawberry.type(description="Codes and/or a text for one concept (FHIR CodeableConcept).")
class CodeableConcept:
    codings: list[Coding]
    text: str | None


@strawberry.input(description="Codes and/or a text for one concept (FHIR CodeableConcept).")
class CodeableConceptInput:
    codings: list[CodingInput] = strawberry.field(default_factory=list)
    text: str | None = None

    def to_domain(self) -> domain.Concept:
        return domain.Concept(tuple(c.to_domain() for c in self.codings), self.text)


@strawberry.federation.type(
    keys=["id"], description="Where peer programs meet (FHIR Location), kept by its organization."
)
class Location(Node):
    id: strawberry.ID
    name: str
    description: str | None
    status: LocationStatus | None
    mode: LocationMode | None
    physical_type: CodeableConcept | None
    address: Address | None
    telecom: list[ContactPoint]
    position: GeoPosition | None
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Location]

    @classmethod
    def from_domain(cls, location: domain.Location) -> Location:
        address, position, kind = location.address, location.position, location.physical_type
        return cls(
            id=to_id(location.id),
            name=location.name,
            description=location.description,
            status=location.status,
            mode=location.mode,
            physical_type=CodeableConcept(
                codings=[Coding.from_domain(c) for c in kind.codings], text=kind.text
            )
            if kind
            else None,
            address=Address(
                use=address.use,
                type=address.type,
                text=address.text,
                lines=list(address.lines),
                city=address.city,
                district=address.district,
                state=address.state,
                postal_code=address.postal_code,
                country=address.country,
                period=Period.of(address.period),
            )
            if address
            else None,
            telecom=[
                ContactPoint(
                    system=t.system,
                    value=t.value,
                    use=t.use,
                    rank=t.rank,
                    period=Period.of(t.period),
                )
                for t in location.telecom
            ],
            position=GeoPosition(
                longitude=position.longitude,
                latitude=position.latitude,
                altitude=position.altitude,
            )
            if position
            else None,
            version=location.version,
            created_at=location.created_at,
            updated_at=location.updated_at,
            record=location,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Location:
        return await load_location(info, parse_id(id, "id"))

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_location(self.record))

    @strawberry.field(description="The peer organization that keeps this location.")
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.organization_id)


async def load_location(info: Info, location_id: UUID) -> Location:
    return Location.from_domain(await info.context.loaders.locations.load(location_id))


async def load_locations(info: Info, location_ids: tuple[UUID, ...]) -> list[Location]:
    """Many locations through the request's loader: every list in the response, one batch."""
    found = await info.context.loaders.locations.load_many(list(location_ids))
    return [Location.from_domain(location) for location in found]


@strawberry.input(description="Narrow the locations directory; every condition must hold.")
class LocationFilterInput:
    organization_id: strawberry.ID | None = None
    name: str | None = strawberry.field(
        default=None, description="Names starting with this, case-insensitively."
    )
    city: str | None = None
    state: str | None = None
    postal_code: str | None = strawberry.field(
        default=None, description="Postal codes starting with this."
    )
    statuses: list[LocationStatus] | None = None
    updated_since: datetime | None = None

    def to_filter(self) -> LocationFilter:
        return LocationFilter(
            organization_id=parse_optional_id(self.organization_id, "filter.organizationId"),
            name=self.name,
            city=self.city,
            state=self.state,
            postal_code=self.postal_code,
            statuses=frozenset(self.statuses or ()),
            updated_since=self.updated_since,
        )


async def location_connection(
    info: Info, where: LocationFilterInput | None, first: int | None, after: str | None
) -> Connection[Location]:
    page = await locations.list_locations(
        info.context.unit_of_work(),
        info.context.principal,
        (where or LocationFilterInput()).to_filter(),
        PageRequest.of(first, after),
    )
    for location in page.items:
        info.context.loaders.locations.prime(location.id, location)
    return connection_from_page(page, Location.from_domain, lambda x: Keyset(x.updated_at, x.id))
