"""Hostile documents and requests against /graphql: each is refused with a clear error and
never a 500; nothing unexpected leaks its text into the response or the logs."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql_support import GraphQL, error_codes
from network import Network

from api.app import create_app
from api.services import referrals
from api.settings import Settings


@pytest.fixture
async def gql(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.peer)


@pytest.fixture
async def production(database_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        environment="production",
        database_url=database_url,
        data_dir=tmp_path,
        public_base_url="https://peerbridge.example",
        key_encryption_key=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def _single_error(body: dict[str, object]) -> dict[str, object]:
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) == 1, errors
    error = errors[0]
    assert isinstance(error, dict)
    return error


async def test_twenty_deep_nesting_is_refused(gql: GraphQL) -> None:
    nested = "id"
    for _ in range(20):
        nested = f"escalatedFrom {{ {nested} }}"
    body = await gql.run(f"{{ referrals {{ edges {{ node {{ {nested} }} }} }} }}")

    error = _single_error(body)
    assert body.get("data") is None
    assert "exceeds maximum operation depth of 12" in str(error["message"])
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_a_hundred_aliases_are_refused(gql: GraphQL) -> None:
    aliases = " ".join(f"a{i}: viewer {{ clientId }}" for i in range(100))
    body = await gql.run(f"{{ {aliases} }}")

    error = _single_error(body)
    assert error["message"] == "100 aliases found. Allowed: 30"
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_three_thousand_duplicated_fields_are_refused_before_parsing_finishes(
    gql: GraphQL,
) -> None:
    body = await gql.run("{ viewer { " + "clientId " * 3000 + "} }")

    error = _single_error(body)
    assert "more than 2000 tokens" in str(error["message"])
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}


async def test_circular_fragments_are_refused(gql: GraphQL) -> None:
    body = await gql.run(
        "query { viewer { ...A } } "
        "fragment A on Viewer { clientId ...B } fragment B on Viewer { subject ...A }"
    )

    assert body.get("data") is None
    messages = [e["message"] for e in body["errors"]]
    assert any("Cannot spread fragment 'A' within itself" in m for m in messages), messages
    assert {e["extensions"]["code"] for e in body["errors"]} == {"GRAPHQL_VALIDATION_FAILED"}


async def test_a_typo_gets_no_field_suggestion(gql: GraphQL) -> None:
    body = await gql.run("{ viewer { clientID } }")

    error = _single_error(body)
    assert error["message"] == "Cannot query field 'clientID' on type 'Viewer'."
    assert "Did you mean" not in str(body)


async def test_introspection_and_graphiql_work_in_development(gql: GraphQL) -> None:
    data = await gql.data("{ __schema { queryType { name } } }")
    ide = await gql.client.get("/graphql", headers={"accept": "text/html"})

    assert data == {"__schema": {"queryType": {"name": "Query"}}}
    assert ide.status_code == 200
    assert "graphiql" in ide.text.lower()


async def test_introspection_and_graphiql_are_off_in_production(
    production: httpx.AsyncClient,
) -> None:
    schema = await production.post("/graphql", json={"query": "{ __schema { types { name } } }"})
    type_ = await production.post(
        "/graphql", json={"query": '{ __type(name: "Patient") { name } }'}
    )
    ide = await production.get("/graphql", headers={"accept": "text/html"})
    sdl = await production.post("/graphql", json={"query": "{ _service { sdl } }"})

    for response in (schema, type_):
        assert response.status_code == 200
        body = response.json()
        assert body.get("data") is None
        for error in body["errors"]:
            assert "introspection has been disabled" in error["message"]
            assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert ide.status_code == 404
    assert "graphiql" not in ide.text.lower()
    assert "type Patient" in sdl.json()["data"]["_service"]["sdl"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"query=%7B+viewer+%7B+clientId+%7D+%7D"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
            b"{ viewer { clientId } }\r\n--x--\r\n",
        ),
        ("text/plain", b'{"query": "{ viewer { clientId } }"}'),
    ],
    ids=["form", "multipart", "text-plain"],
)
async def test_simple_cross_site_posts_are_refused(
    gql: GraphQL, content_type: str, body: bytes
) -> None:
    response = await gql.client.post(
        "/graphql",
        content=body,
        headers={"content-type": content_type, "authorization": f"Bearer {gql.token}"},
    )

    assert response.status_code == 415
    error = _single_error(response.json())
    assert "application/json" in str(error["message"])
    assert error["extensions"] == {"code": "BAD_REQUEST"}


async def test_a_mutation_over_get_is_refused_and_not_run(gql: GraphQL, network: Network) -> None:
    mutation = (
        f'mutation {{ createReferral(input: {{patientId: "{network.patient.id}", '
        f'performerOrganizationId: "{network.peer.id}"}}) {{ id }} }}'
    )
    response = await gql.client.get(
        "/graphql", params={"query": mutation}, headers={"authorization": f"Bearer {gql.token}"}
    )
    inbox = await gql.data("{ referrals { edges { cursor } } }")

    assert response.status_code == 400
    error = _single_error(response.json())
    assert error["message"] == "mutations are not allowed when using GET"
    assert inbox == {"referrals": {"edges": []}}


async def test_a_query_over_get_still_works(gql: GraphQL) -> None:
    response = await gql.client.get(
        "/graphql",
        params={"query": "{ viewer { scopes } }"},
        headers={"authorization": f"Bearer {gql.token}"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"viewer": {"scopes": ["system/*.cruds"]}}}


async def test_an_oversized_body_is_refused_with_413(gql: GraphQL) -> None:
    padding = "#" + "x" * (2 * 1024 * 1024) + "\n"
    response = await gql.client.post(
        "/graphql",
        json={"query": padding + "{ viewer { clientId } }"},
        headers={"authorization": f"Bearer {gql.token}"},
    )
    assert response.status_code == 413


async def test_batches_and_broken_json_get_a_clear_400(gql: GraphQL) -> None:
    headers = {"authorization": f"Bearer {gql.token}", "content-type": "application/json"}
    batch = await gql.client.post(
        "/graphql",
        json=[{"query": "{ viewer { clientId } }"}] * 2,
        headers=headers,
    )
    broken = await gql.client.post("/graphql", content=b'{"query": ', headers=headers)
    empty = await gql.client.post("/graphql", json={}, headers=headers)

    for response in (batch, broken, empty):
        assert response.status_code == 400
        assert _single_error(response.json())["extensions"] == {"code": "BAD_REQUEST"}


async def test_an_unexpected_failure_is_masked_in_the_response_and_the_logs(
    gql: GraphQL, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("duplicate key (mrn)=(MRN-Ada-Lovelace-1815)")

    monkeypatch.setattr(referrals, "list_referrals", broken)
    with caplog.at_level(logging.DEBUG):
        body = await gql.run("{ viewer { clientId } referrals { edges { cursor } } }")

    assert body["data"]["viewer"]["clientId"]
    assert body["data"]["referrals"] is None
    assert error_codes(body) == [("referrals", "INTERNAL_SERVER_ERROR")]
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "Ada" not in str(body)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError at referrals" in logged
    assert "Ada" not in logged and "MRN" not in logged
