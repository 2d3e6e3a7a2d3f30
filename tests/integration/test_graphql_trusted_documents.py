"""Trusted documents: Automatic Persisted Queries (Apollo's protocol) shared by every worker
through the database, and the allowlist mode where only registered documents run."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql_support import token_for
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from network import Network
from starlette.applications import Starlette

from api.app import create_app
from api.cli.main import main
from api.settings import Settings

PROGRAMS = "query Programs { peerPrograms(first: 5) { edges { node { name } } } }"
SDL = "query Sdl { _service { sdl } }"


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(document: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(document)}}


@asynccontextmanager
async def running(settings: Settings, **changes: Any) -> AsyncIterator[Starlette]:
    """Another app (a worker) on the same database, with these settings changed."""
    app = create_app(settings.model_copy(update=changes))
    async with LifespanManager(app):
        yield app


@asynccontextmanager
async def http(app: Starlette, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    transport = ASGIWebSocketTransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


async def stored(pool: asyncpg.Pool) -> list[tuple[str, bool]]:
    rows = await pool.fetch("SELECT sha256, allowlisted FROM graphql_documents ORDER BY 1")
    return [(row[0], row[1]) for row in rows]


async def test_an_unknown_hash_is_not_found_as_apollo_answers_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    token = await token_for(client, pool, network.peer)
    response = await client.post(
        "/graphql",
        json={"extensions": persisted(PROGRAMS)},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "errors": [
            {
                "message": "PersistedQueryNotFound",
                "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"},
            }
        ]
    }
    assert response.headers["cache-control"] == "private, no-cache, must-revalidate"


async def test_hash_and_query_register_it_for_every_worker_by_post_and_get(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, settings: Settings
) -> None:
    token = await token_for(client, pool, network.peer)
    headers = {"authorization": f"Bearer {token}"}
    first = await client.post(
        "/graphql", json={"query": PROGRAMS, "extensions": persisted(PROGRAMS)}, headers=headers
    )
    assert first.status_code == 200 and "errors" not in first.json(), first.text
    assert await stored(pool) == [(sha(PROGRAMS), False)]

    by_hash = await client.post(
        "/graphql", json={"extensions": persisted(PROGRAMS)}, headers=headers
    )
    assert by_hash.json() == first.json()
    # Another worker knows it from the database; GET works too (Apollo's GET form).
    async with running(settings) as worker, http(worker, token) as other:
        response = await other.get(
            "/graphql",
            params={"extensions": json.dumps(persisted(PROGRAMS))},
            headers={"accept": "application/json"},
        )
        assert response.status_code == 200
        assert response.json() == first.json()


async def test_a_hash_that_does_not_match_the_query_is_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    token = await token_for(client, pool, network.peer)
    headers = {"authorization": f"Bearer {token}"}
    response = await client.post(
        "/graphql",
        json={"query": PROGRAMS, "extensions": persisted(PROGRAMS + " ")},
        headers=headers,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "provided sha does not match query"
    for bad in (
        {"version": 2, "sha256Hash": sha(PROGRAMS)},
        {"version": 1, "sha256Hash": "ABC"},
        {"version": 1},
        "not an object",
    ):
        refused = await client.post(
            "/graphql", json={"extensions": {"persistedQuery": bad}}, headers=headers
        )
        assert refused.status_code == 400, bad
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert await stored(pool) == []


async def test_only_valid_documents_of_authenticated_callers_are_kept(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    # Without a token the document runs (the SDL is public) but is not kept.
    anonymous = await client.post("/graphql", json={"query": SDL, "extensions": persisted(SDL)})
    assert anonymous.status_code == 200 and anonymous.json()["data"]["_service"]["sdl"]
    token = await token_for(client, pool, network.peer)
    invalid = "query Nope { noSuchField }"
    response = await client.post(
        "/graphql",
        json={"query": invalid, "extensions": persisted(invalid)},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await stored(pool) == []


async def test_kept_documents_are_bounded_oldest_first(
    settings: Settings, pool: asyncpg.Pool, network: Network
) -> None:
    documents = [
        f"query Q{n} {{ peerPrograms(first: {n + 1}) {{ edges {{ cursor }} }} }}" for n in range(3)
    ]
    async with running(settings, graphql_persisted_queries_max=2) as worker:
        async with http(worker) as anonymous:
            token = await token_for(anonymous, pool, network.peer)
        async with http(worker, token) as client:
            for document in documents:
                response = await client.post(
                    "/graphql", json={"query": document, "extensions": persisted(document)}
                )
                assert "errors" not in response.json(), response.text
    assert sorted(h for h, _ in await stored(pool)) == sorted(sha(d) for d in documents[1:])


async def test_allowlist_runs_only_registered_documents(
    settings: Settings,
    pool: asyncpg.Pool,
    network: Network,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("PEERBRIDGE_DATA_DIR", str(tmp_path))
    other = "query Other { peerPrograms(first: 1) { edges { cursor } } }"
    async with running(settings, graphql_trusted_documents="allowlist") as worker:
        async with http(worker) as anonymous:
            token = await token_for(anonymous, pool, network.peer)
        async with http(worker, token) as client:
            refused = await client.post("/graphql", json={"query": PROGRAMS})
            assert refused.status_code == 400
            assert refused.json()["errors"][0]["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"
            unknown = await client.post("/graphql", json={"extensions": persisted(PROGRAMS)})
            assert unknown.status_code == 400
            code = unknown.json()["errors"][0]["extensions"]["code"]
            assert code == "PERSISTED_QUERY_NOT_IN_LIST"
            # Clients cannot register documents themselves.
            apq = await client.post(
                "/graphql", json={"query": other, "extensions": persisted(other)}
            )
            assert apq.status_code == 400
            assert await stored(pool) == []

            manifest = tmp_path / "persisted-query-manifest.json"
            manifest.write_text(
                json.dumps(
                    {
                        "format": "apollo-persisted-query-manifest",
                        "version": 1,
                        "operations": [
                            {"id": sha(PROGRAMS), "name": "Programs", "type": "query",
                             "body": PROGRAMS},
                        ],
                    }
                )
            )  # fmt: skip
            assert await asyncio.to_thread(main, ["graphql", "register", str(manifest)]) == 0
            by_text = await client.post("/graphql", json={"query": PROGRAMS})
            assert by_text.status_code == 200 and "errors" not in by_text.json(), by_text.text
            by_hash = await client.post("/graphql", json={"extensions": persisted(PROGRAMS)})
            assert by_hash.json() == by_text.json()
            still = await client.post("/graphql", json={"query": other})
            assert still.status_code == 400

            # Subscriptions over a WebSocket are held to the same list.
            async with aconnect_ws(
                "http://testserver/graphql", client, subprotocols=["graphql-transport-ws"]
            ) as ws:
                init = {"Authorization": f"Bearer {token}"}
                await ws.send_json({"type": "connection_init", "payload": init})
                assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
                subscription = "subscription { referralEvents { type referralId } }"
                await ws.send_json(
                    {"id": "1", "type": "subscribe", "payload": {"query": subscription}}
                )
                message = await ws.receive_json(timeout=5)
                assert message["type"] == "error"
                assert message["payload"][0]["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"
    assert await stored(pool) == [(sha(PROGRAMS), True)]


async def test_register_checks_every_document_first_and_list_shows_them(
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    monkeypatch.setenv("PEERBRIDGE_DATA_DIR", str(tmp_path))
    good = tmp_path / "Programs.graphql"
    good.write_text(PROGRAMS)
    invalid = tmp_path / "Broken.graphql"
    invalid.write_text("query Broken { noSuchField }")
    wrong_id = tmp_path / "manifest.json"
    wrong_id.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": "0" * 64, "name": "X", "type": "query", "body": SDL}],
            }
        )
    )
    assert await asyncio.to_thread(main, ["graphql", "register", str(good), str(invalid)]) == 1
    assert "Broken: not a valid operation" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["graphql", "register", str(wrong_id)]) == 1
    assert "operations[0]: `id` is not the SHA-256 of `body`" in capsys.readouterr().err
    assert await stored(pool) == []

    assert await asyncio.to_thread(main, ["graphql", "register", str(good)]) == 0
    assert "registered 1 documents (1 new" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["graphql", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(entry["sha256"], entry["name"]) for entry in listed] == [(sha(PROGRAMS), "Programs")]
