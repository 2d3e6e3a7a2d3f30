"""Calling /graphql in tests: real OAuth clients and bearer tokens, one small client class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from api.auth.clients import create_client
from api.domain.organizations import Organization

ALL_SCOPES = "system/*.cruds"


async def token_for(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    organization: Organization,
    scopes: str = ALL_SCOPES,
) -> str:
    """Register an OAuth client for the organization and take a token from /oauth/token."""
    registered = await create_client(
        pool,
        organization_id=organization.id,
        name=f"App of {organization.name}",
        scopes=scopes.split(),
    )
    assert registered.secret is not None
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scopes},
        auth=(registered.client.client_id, registered.secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@dataclass
class GraphQL:
    """POSTs operations as one organization's client."""

    client: httpx.AsyncClient
    token: str | None

    @classmethod
    async def as_organization(
        cls,
        client: httpx.AsyncClient,
        pool: asyncpg.Pool,
        organization: Organization,
        scopes: str = ALL_SCOPES,
    ) -> GraphQL:
        return cls(client, await token_for(client, pool, organization, scopes))

    async def post(self, query: str, **variables: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )

    async def run(self, query: str, **variables: Any) -> dict[str, Any]:
        """The whole response body (data and errors)."""
        response = await self.post(query, **variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of an operation that must succeed without any error."""
        body = await self.run(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


def error_codes(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted path, extensions.code) of each error, for compact assertions."""
    return [
        (".".join(str(p) for p in error.get("path", [])), error["extensions"]["code"])
        for error in body.get("errors", [])
    ]
