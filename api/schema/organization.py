"""Organization: the tenants (clinics and peer-support organizations). FHIR Organization."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import organizations as domain
from api.domain.organizations import OrganizationKind
from api.integrations.fhir.resources.organizations import to_fhir_organization
from api.schema.connection import Connection
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import parse_id, to_id
from api.schema.node import Node

if TYPE_CHECKING:
    from api.schema.program import PeerProgram
    from api.schema.supporter import PeerSupporter


@strawberry.federation.type(keys=["id"], description="A clinic or a peer-support organization.")
class Organization(Node):
    id: strawberry.ID
    name: str
    kind: OrganizationKind
    npi: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Organization]

    @classmethod
    def from_domain(cls, organization: domain.Organization) -> Organization:
        return cls(
            id=to_id(organization.id),
            name=organization.name,
            kind=organization.kind,
            npi=organization.npi,
            active=organization.active,
            version=organization.version,
            created_at=organization.created_at,
            updated_at=organization.updated_at,
            record=organization,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Organization:
        return await load_organization(info, parse_id(id, "id"))

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_organization(self.record))

    @strawberry.field(description="The organization's peer programs, newest change first.")
    async def programs(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[PeerProgram, strawberry.lazy("api.schema.program")]] | None:
        from api.schema.program import programs_of_organization

        return await programs_of_organization(info, self.record.id, first, after)

    @strawberry.field(description="The organization's peer supporters.")
    async def supporters(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Annotated[PeerSupporter, strawberry.lazy("api.schema.supporter")]] | None:
        from api.schema.supporter import supporters_of_organization

        return await supporters_of_organization(info, self.record.id, first, after)


async def load_organization(info: Info, organization_id: UUID) -> Organization:
    """The organization through the request's loader (raises NOT_FOUND / FORBIDDEN)."""
    return Organization.from_domain(await info.context.loaders.organizations.load(organization_id))
