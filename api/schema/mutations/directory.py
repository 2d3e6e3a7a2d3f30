"""Directory mutations: a peer organization's own programs and supporters."""

from __future__ import annotations

from datetime import date

import strawberry

from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    SupervisorKind,
)
from api.schema.context import Info
from api.schema.ids import parse_optional_id
from api.schema.program import PeerProgram
from api.schema.supporter import PeerSupporter
from api.services import programs, supporters
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
