"""Calling /fhir in tests as one organization's OAuth client; every resource the API returns
is kept (`seen`) so the contract tests can validate all of it in one Node process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from graphql_support import ALL_SCOPES, token_for

from api.domain.organizations import Organization

FHIR_JSON = "application/fhir+json"


@dataclass
class Fhir:
    client: httpx.AsyncClient
    token: str | None
    seen: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def as_organization(
        cls,
        client: httpx.AsyncClient,
        pool: asyncpg.Pool,
        organization: Organization,
        scopes: str = ALL_SCOPES,
        seen: list[dict[str, Any]] | None = None,
    ) -> Fhir:
        token = await token_for(client, pool, organization, scopes)
        return cls(client, token, seen if seen is not None else [])

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"accept": FHIR_JSON, **(extra or {})}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        extra = {"content-type": FHIR_JSON, **(headers or {})} if body is not None else headers
        response = await self.client.request(
            method,
            f"/fhir/{path.lstrip('/')}" if path else "/fhir",
            json=body,
            headers=self._headers(extra),
        )
        if response.status_code == 304:  # Not Modified: headers only, no body
            assert not response.content
            return response
        assert response.headers["content-type"].startswith(FHIR_JSON), response.text
        self.seen.append(response.json())
        return response

    async def get(self, path: str) -> httpx.Response:
        return await self.request("GET", path)

    async def ok(self, method: str, path: str, body: Any = None, **headers: str) -> dict[str, Any]:
        response = await self.request(method, path, body, headers or None)
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()
        return data


def entries(bundle: dict[str, Any], mode: str | None = None) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry", ())
        if mode is None or e.get("search", {}).get("mode") == mode
    ]


def issue_expressions(outcome: dict[str, Any]) -> list[str]:
    return [x for issue in outcome["issue"] for x in issue.get("expression", ())]
