"""PeerSupporter: a person with lived experience working for a peer organization
(FHIR Practitioner + PractitionerRole, NUCC 175T00000X)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import supporters as domain
from api.domain.supporters import (
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    SupervisorKind,
)
from api.integrations.fhir.resources.supporters import (
    to_fhir_practitioner,
    to_fhir_practitioner_role,
)
from api.schema.connection import Connection, connection_from_page
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import parse_id, parse_optional_id, to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.services import supporters
from api.services.filters import SupporterFilter
from api.services.pagination import Keyset, Page, PageRequest
from api.services.policy import utcnow


@strawberry.type(description="A peer-specialist certification (PractitionerRole qualification).")
class Certification:
    type: str
    subtype: CertificationSubtype
    issuing_body: str
    jurisdiction: str
    number: str
    status: CertificationStatus
    issued_on: date
    expires_on: date | None
    last_verified_on: date | None
    valid_today: bool = strawberry.field(description="Active, issued and not expired today.")

    @classmethod
    def from_domain(cls, certification: domain.Certification, today: date) -> Certification:
        return cls(
            type=certification.type,
            subtype=certification.subtype,
            issuing_body=certification.issuing_body,
            jurisdiction=certification.jurisdiction,
            number=certification.number,
            status=certification.status,
            issued_on=certification.issued_on,
            expires_on=certification.expires_on,
            last_verified_on=certification.last_verified_on,
            valid_today=certification.is_valid_on(today),
        )


@strawberry.type(description="The supporter's supervisor (peer or clinical).")
class Supervisor:
    name: str
    kind: SupervisorKind


@strawberry.federation.type(keys=["id"], description="A peer supporter (peer specialist).")
class PeerSupporter(Node):
    id: strawberry.ID
    display_name: str
    lived_experience: list[LivedExperience]
    languages: list[str]
    certifications: list[Certification]
    supervisor: Supervisor | None
    max_caseload: int
    active: bool
    has_valid_certification: bool = strawberry.field(
        description="Holds at least one certification valid today (needed to be assigned)."
    )
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.PeerSupporter]

    @classmethod
    def from_domain(cls, supporter: domain.PeerSupporter) -> PeerSupporter:
        today = utcnow().date()
        supervisor = (
            Supervisor(name=supporter.supervisor_name, kind=supporter.supervisor_kind)
            if supporter.supervisor_name is not None and supporter.supervisor_kind is not None
            else None
        )
        return cls(
            id=to_id(supporter.id),
            display_name=supporter.display_name,
            lived_experience=list(supporter.lived_experience),
            languages=list(supporter.languages),
            certifications=[Certification.from_domain(c, today) for c in supporter.certifications],
            supervisor=supervisor,
            max_caseload=supporter.max_caseload,
            active=supporter.active,
            has_valid_certification=supporter.has_valid_certification(today),
            version=supporter.version,
            created_at=supporter.created_at,
            updated_at=supporter.updated_at,
            record=supporter,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> PeerSupporter:
        return await load_supporter(info, parse_id(id, "id"))

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_practitioner(self.record))

    @strawberry.field(description="The supporter's FHIR PractitionerRole (NUCC 175T00000X).")
    def fhir_practitioner_role(self) -> JSON:
        return as_json(to_fhir_practitioner_role(self.record))

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.organization_id)


async def load_supporter(info: Info, supporter_id: UUID) -> PeerSupporter:
    return PeerSupporter.from_domain(await info.context.loaders.supporters.load(supporter_id))


@strawberry.input(description="Narrow the supporter directory; every condition must hold.")
class SupporterFilterInput:
    organization_id: strawberry.ID | None = None
    language: str | None = None
    lived_experience: LivedExperience | None = None
    active: bool | None = None

    def to_filter(self) -> SupporterFilter:
        return SupporterFilter(
            organization_id=parse_optional_id(self.organization_id, "filter.organizationId"),
            language=self.language,
            lived_experience=self.lived_experience,
            active=self.active,
        )


async def supporter_connection(
    info: Info, where: SupporterFilterInput | None, first: int | None, after: str | None
) -> Connection[PeerSupporter]:
    page = await supporters.list_supporters(
        info.context.unit_of_work(),
        info.context.principal,
        (where or SupporterFilterInput()).to_filter(),
        PageRequest.of(first, after),
    )
    return _connection(info, page)


async def supporters_of_organization(
    info: Info, organization_id: UUID, first: int | None, after: str | None
) -> Connection[PeerSupporter]:
    """One organization's supporters, batched with every other organization in the response."""
    loader = info.context.loaders.supporters_of_organizations(PageRequest.of(first, after))
    return _connection(info, await loader.load(organization_id))


def _connection(info: Info, page: Page[domain.PeerSupporter]) -> Connection[PeerSupporter]:
    for supporter in page.items:
        info.context.loaders.supporters.prime(supporter.id, supporter)
    return connection_from_page(
        page, PeerSupporter.from_domain, lambda s: Keyset(s.updated_at, s.id)
    )
