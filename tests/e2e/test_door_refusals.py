"""Refusals made before a door's own code runs (bad token, body too large, no route, wrong
method, a crash) answer in the shape of the door: OperationOutcome under /fhir, GraphQL errors
with `extensions.code` under /graphql; /oauth and the probes keep RFC 6749/6750 JSON."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fhir_support import FHIR_JSON
from graphql_support import token_for
from network import Network
from starlette.applications import Starlette

from api.app import create_app
from api.domain.errors import (
    Conflict,
    ConsentRequired,
    DomainError,
    Forbidden,
    Invalid,
    NotFound,
    NotSupported,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UnknownAddress,
    UnsupportedMediaType,
)
from api.door_refusals import door_refusal
from api.integrations.fhir.rest.operation_outcomes import PreconditionFailed
from api.schema.http import GraphQLEndpoint
from api.settings import Settings

_DOORS = ["/fhir/Patient", "/graphql"]


def _assert_door_shape(path: str, response: httpx.Response, code: str) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if path.startswith("/fhir"):
        assert response.headers["content-type"].startswith(FHIR_JSON)
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["details"]["coding"][0]["code"] == code
    else:
        assert response.headers["content-type"].startswith("application/json")
        (error,) = body["errors"]
        assert error["extensions"]["code"] == code
    return body


@pytest.mark.parametrize("path", _DOORS)
async def test_an_unusable_token_is_a_401_in_the_door_shape_with_the_rfc6750_challenge(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(
        path,
        json={"query": "{ viewer { clientId } }"},
        headers={"authorization": "Bearer not-a-token", "content-type": "application/json"},
    )

    assert response.status_code == 401
    _assert_door_shape(path, response, "UNAUTHENTICATED")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and 'error="invalid_token"' in challenge


async def test_outside_the_doors_an_unusable_token_keeps_the_rfc6750_body(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/nowhere", headers={"authorization": "Bearer not-a-token"})

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


@pytest.fixture
async def small_limit(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, data_dir=tmp_path, max_request_body_bytes=1024)
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


@pytest.mark.parametrize("path", _DOORS)
async def test_a_body_over_the_limit_is_a_413_in_the_door_shape(
    small_limit: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    path: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = await token_for(small_limit, pool, network.clinic)
    small_limit.headers["authorization"] = f"Bearer {token}"
    declared = await small_limit.post(path, content=b"x" * 2048)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        for _ in range(4):
            yield b"x" * 512

    streamed = await small_limit.post(
        path, content=chunks(), headers={"content-type": "application/json"}
    )

    for response in (declared, streamed):
        assert response.status_code == 413
        body = _assert_door_shape(path, response, "TOO_LARGE")
        assert "1024 bytes" in str(body)
    # Refused, not failed: no door logs the cut-off read as an error.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_no_route_and_a_wrong_method_answer_in_the_door_shape(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    token = await token_for(client, pool, network.clinic)
    headers = {"authorization": f"Bearer {token}"}

    unknown = await client.get("/graphql/nothing", headers=headers)
    put_graphql = await client.put("/graphql", headers=headers)
    delete_fhir_base = await client.delete("/fhir", headers=headers)
    elsewhere = await client.get("/nothing-here")

    assert unknown.status_code == 404
    _assert_door_shape("/graphql", unknown, "NOT_FOUND")
    assert put_graphql.status_code == 405
    _assert_door_shape("/graphql", put_graphql, "NOT_SUPPORTED")
    assert delete_fhir_base.status_code == 405
    _assert_door_shape("/fhir", delete_fhir_base, "NOT_SUPPORTED")
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"] == "not_found"


async def test_a_crash_before_graphql_answers_is_a_masked_500_in_graphql_shape(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: GraphQLEndpoint, data: str | bytes) -> dict[str, object]:
        raise RuntimeError("duplicate key (mrn)=(MRN-Ada)")

    monkeypatch.setattr(GraphQLEndpoint, "parse_json", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post("/graphql", json={"query": "{ __typename }"})

    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {"message": "Unexpected error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ]
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unauthenticated("no token"), 401),
        (Forbidden("not yours"), 403),
        (ConsentRequired("no consent"), 403),
        (NotFound("Patient", "x"), 404),
        (UnknownAddress("nothing here"), 404),
        (NotSupported("no DELETE"), 405),
        (Conflict("stale"), 409),
        (PreconditionFailed("stale"), 412),
        (TooLarge("too big"), 413),
        (UnsupportedMediaType("not JSON"), 415),
        (Invalid("bad", field="name"), 422),
        (RateLimited("slow down", retry_after_s=1), 429),
        (Unavailable("database down", retry_after_s=2), 503),
    ],
)
def test_every_refusal_status_has_an_operation_outcome_under_fhir(
    error: DomainError, status: int
) -> None:
    response = door_refusal("/fhir/Patient", error, {})

    assert response is not None
    assert response.status_code == status
    assert b'"resourceType":"OperationOutcome"' in response.body


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (Unauthenticated("no token"), 401, "UNAUTHENTICATED"),
        (Forbidden("not yours"), 403, "FORBIDDEN"),
        (UnknownAddress("nothing here"), 404, "NOT_FOUND"),
        (NotSupported("no PUT"), 405, "NOT_SUPPORTED"),
        (TooLarge("too big"), 413, "TOO_LARGE"),
        (UnsupportedMediaType("not JSON"), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (RateLimited("slow down", retry_after_s=1), 429, "RATE_LIMITED"),
        (Unavailable("database down", retry_after_s=2), 503, "UNAVAILABLE"),
    ],
)
def test_every_request_refusal_has_graphql_errors_under_graphql(
    error: DomainError, status: int, code: str
) -> None:
    response = door_refusal("/graphql", error, {})

    assert response is not None
    assert response.status_code == status
    assert json.loads(response.body)["errors"][0]["extensions"]["code"] == code
