"""The caller: OAuth client, its organization and the scopes its token carries."""

from __future__ import annotations

import strawberry

from api.domain.principal import Principal
from api.schema.context import Info
from api.schema.organization import Organization, load_organization


@strawberry.type(description="Who is calling: the OAuth client, its organization, its scopes.")
class Viewer:
    client_id: str
    subject: str
    scopes: list[str]
    principal: strawberry.Private[Principal]

    @classmethod
    def from_principal(cls, principal: Principal) -> Viewer:
        return cls(
            client_id=principal.client_id,
            subject=principal.subject,
            scopes=[str(scope) for scope in principal.scopes],
            principal=principal,
        )

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.principal.organization_id)
