"""Directory mutations: a peer organization's own programs, their locations and supporters."""

from __future__ import annotations

from datetime import date

import strawberry

from api.domain.locations import LocationMode, LocationStatus
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    SupervisorKind,
)
from api.schema.context import Info
from api.schema.ids import parse_ids, parse_optional_id
from api.schema.location import (
    AddressInput,
    CodeableConceptInput,
    ContactPointInput,
    GeoPositionInput,
    Location,
)
from api.schema.program import PeerProgram
from api.schema.supporter import PeerSupporter
from api.services import locations, programs, supporters
from api.services.locations import UpsertLocation
from api.services.programs import UpsertPeerProgram
from api.services.supporters import UpsertPeerSupporter


@strawberry.input(description="Create a program (no id) or replace one (id + expectedVersion).")
class UpsertPeerProgramInput:
    name: str
    kind: ProgramKind
    id: strawberry.ID | None = None
    expected_version: int | None = None
    description: str = ""
    languages: list[str] = strawberry.field(default_factory=lambda: ["en"])
    delivery_modes: list[DeliveryMode] = strawberry.field(
        default_factory=lambda: [DeliveryMode.IN_PERSON]
    )
    eligibility: str = ""
    capacity: int | None = None
    accepting_referrals: bool = True
    substance_use_focus: bool = False
    location_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Where it meets (your own locations), in order; [] for none; left out, "
        "an update keeps the locations it had.",
    )
    idempotency_key: str | None = None

    def to_command(self) -> UpsertPeerProgram:
        return UpsertPeerProgram(
            name=self.name,
            kind=self.kind,
            id=parse_optional_id(self.id, "input.id"),
            expected_version=self.expected_version,
            description=self.description,
            languages=tuple(self.languages),
            delivery_modes=tuple(self.delivery_modes),
            eligibility=self.eligibility,
            capacity=self.capacity,
            accepting_referrals=self.accepting_referrals,
            substance_use_focus=self.substance_use_focus,
            location_ids=parse_ids(self.location_ids, "input.locationIds")
            if self.location_ids is not None
            else None,
        )


@strawberry.input(
    description="Create a location (no id) or replace one (id; expectedVersion, when given, "
    "must be the current version). Elements only FHIR carries (identifiers, opening hours, "
    "...) are left as they were."
)
class UpsertLocationInput:
    name: str
    id: strawberry.ID | None = None
    expected_version: int | None = None
    description: str | None = None
    status: LocationStatus | None = None
    mode: LocationMode | None = None
    physical_type: CodeableConceptInput | None = None
    address: AddressInput | None = None
    telecom: list[ContactPointInput] = strawberry.field(default_factory=list)
    position: GeoPositionInput | None = None
    idempotency_key: str | None = None

    def to_command(self) -> UpsertLocation:
        return UpsertLocation(
            name=self.name,
            id=parse_optional_id(self.id, "input.id"),
            expected_version=self.expected_version,
            description=self.description,
            status=self.status,
            mode=self.mode,
            physical_type=self.physical_type.to_domain() if self.physical_type else None,
            address=self.address.to_domain() if self.address else None,
            telecom=tuple(t.to_domain() for t in self.telecom),
            position=self.position.to_domain() if self.position else None,
        )


@strawberry.input(description="A peer-specialist certification.")
class CertificationInput:
    type: str
    subtype: CertificationSubtype
    issuing_body: str
    jurisdiction: str
    number: str
    issued_on: date
    status: CertificationStatus = CertificationStatus.ACTIVE
    expires_on: date | None = None
    last_verified_on: date | None = None

    def to_domain(self) -> Certification:
        return Certification(
            type=self.type,
            subtype=self.subtype,
            issuing_body=self.issuing_body,
            jurisdiction=self.jurisdiction,
            number=self.number,
            status=self.status,
            issued_on=self.issued_on,
            expires_on=self.expires_on,
            last_verified_on=self.last_verified_on,
        )


@strawberry.input(description="Create a supporter (no id) or replace one (id + expectedVersion).")
class UpsertPeerSupporterInput:
    display_name: str
    max_caseload: int
    id: strawberry.ID | None = None
    expected_version: int | None = None
    lived_experience: list[LivedExperience] = strawberry.field(default_factory=list)
    languages: list[str] = strawberry.field(default_factory=lambda: ["en"])
    certifications: list[CertificationInput] = strawberry.field(default_factory=list)
    supervisor_name: str | None = None
    supervisor_kind: SupervisorKind | None = None
    active: bool = True
    idempotency_key: str | None = None

    def to_command(self) -> UpsertPeerSupporter:
        return UpsertPeerSupporter(
            display_name=self.display_name,
            max_caseload=self.max_caseload,
            id=parse_optional_id(self.id, "input.id"),
            expected_version=self.expected_version,
            lived_experience=tuple(self.lived_experience),
            languages=tuple(self.languages),
            certifications=tuple(c.to_domain() for c in self.certifications),
            supervisor_name=self.supervisor_name,
            supervisor_kind=self.supervisor_kind,
            active=self.active,
        )


@strawberry.type
class DirectoryMutations:
    @strawberry.mutation(description="Create or update one of your peer programs.")
    async def upsert_peer_program(
        self, info: Info, input: UpsertPeerProgramInput
    ) -> PeerProgram | None:
        program = await programs.upsert_program(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return PeerProgram.from_domain(program)

    @strawberry.mutation(description="Create or update one of your program locations.")
    async def upsert_location(self, info: Info, input: UpsertLocationInput) -> Location | None:
        location = await locations.upsert_location(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return Location.from_domain(location)

    @strawberry.mutation(description="Create or update one of your peer supporters.")
    async def upsert_peer_supporter(
        self, info: Info, input: UpsertPeerSupporterInput
    ) -> PeerSupporter | None:
        supporter = await supporters.upsert_supporter(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return PeerSupporter.from_domain(supporter)
