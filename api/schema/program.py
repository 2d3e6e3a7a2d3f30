"""PeerProgram: what a peer organization offers (FHIR HealthcareService)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import programs as domain
from api.domain.programs import DeliveryMode, ProgramKind
from api.integrations.fhir.resources.programs import to_fhir_healthcare_service
from api.schema.connection import Connection, connection_from_page
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import parse_id, parse_optional_id, to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.services import programs
from api.services.filters import ProgramFilter
from api.services.pagination import Keyset, Page, PageRequest

if TYPE_CHECKING:
    from api.schema.location import Location
    from api.schema.session import Session


@strawberry.federation.type(keys=["id"], description="A peer program (FHIR HealthcareService).")
class PeerProgram(Node):
    id: strawberry.ID
    name: str
    kind: ProgramKind
    description: str
    languages: list[str]
    delivery_modes: list[DeliveryMode]
    eligibility: str
    capacity: int | None
    accepting_referrals: bool
    substance_use_focus: bool
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.PeerProgram]

    @classmethod
    def from_domain(cls, program: domain.PeerProgram) -> PeerProgram:
        return cls(
            id=to_id(program.id),
            name=program.name,
            kind=program.kind,
            description=program.description,
            languages=list(program.languages),
            delivery_modes=list(program.delivery_modes),
            eligibility=program.eligibility,
            capacity=program.capacity,
            accepting_referrals=program.accepting_referrals,
            substance_use_focus=program.substance_use_focus,
            version=program.version,
            created_at=program.created_at,
            updated_at=program.updated_at,
            record=program,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> PeerProgram:
        return await load_program(info, parse_id(id, "id"))

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_healthcare_service(self.record))

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.organization_id)

    @strawberry.field(
        description="Where the program meets (FHIR HealthcareService.location), in its order."
    )
    async def locations(
        self, info: Info
    ) -> list[Annotated[Location, strawberry.lazy("api.schema.location")]] | None:
        from api.schema.location import load_locations

        return await load_locations(info, self.record.location_ids)

    @strawberry.field(description="The program's latest sessions, latest first (at most `first`).")
    async def sessions(
        self, info: Info, first: int = 50
    ) -> list[Annotated[Session, strawberry.lazy("api.schema.session")]] | None:
        from api.schema.session import Session

        page = PageRequest.of(first, None)
        loaders = info.context.loaders
        found = await loaders.sessions_of_programs(page.first).load(self.record.id)
        for session in found:
            loaders.sessions.prime(session.id, session)
        return [Session.from_domain(session) for session in found]


async def load_program(info: Info, program_id: UUID) -> PeerProgram:
    return PeerProgram.from_domain(await info.context.loaders.programs.load(program_id))


@strawberry.input(description="Narrow the program directory; every condition must hold.")
class ProgramFilterInput:
    organization_id: strawberry.ID | None = None
    kinds: list[ProgramKind] | None = None
    language: str | None = None
    delivery_mode: DeliveryMode | None = None
    accepting_referrals: bool | None = None
    updated_since: datetime | None = None

    def to_filter(self) -> ProgramFilter:
        return ProgramFilter(
            organization_id=parse_optional_id(self.organization_id, "filter.organizationId"),
            kinds=frozenset(self.kinds or ()),
            language=self.language,
            delivery_mode=self.delivery_mode,
            accepting_referrals=self.accepting_referrals,
            updated_since=self.updated_since,
        )


async def program_connection(
    info: Info, where: ProgramFilterInput | None, first: int | None, after: str | None
) -> Connection[PeerProgram]:
    page = await programs.list_programs(
        info.context.unit_of_work(),
        info.context.principal,
        (where or ProgramFilterInput()).to_filter(),
        PageRequest.of(first, after),
    )
    return _connection(info, page)


async def programs_of_organization(
    info: Info, organization_id: UUID, first: int | None, after: str | None
) -> Connection[PeerProgram]:
    """One organization's programs, batched with every other organization in the response."""
    loader = info.context.loaders.programs_of_organizations(PageRequest.of(first, after))
    return _connection(info, await loader.load(organization_id))


def _connection(info: Info, page: Page[domain.PeerProgram]) -> Connection[PeerProgram]:
    for program in page.items:
        info.context.loaders.programs.prime(program.id, program)
    return connection_from_page(page, PeerProgram.from_domain, lambda p: Keyset(p.updated_at, p.id))
