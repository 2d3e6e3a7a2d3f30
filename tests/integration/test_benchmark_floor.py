"""The benchmark's floor is honest: on the generator's data it answers what PeerBridge answers
(same referrals in the same order, same patients shown or withheld) and writes the same audit
rows. Not timed: speed is measured by `python -m benchmarks run`."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from asgi_lifespan import LifespanManager

from api.auth.clients import create_client
from api.settings import Settings
from benchmarks import dataset, floor
from benchmarks.harness import INBOX_QUERY, REFERRAL_QUERY

REFERRALS = 600  # 60 in the caller's inbox: a full page, every consent variant in it
_AUDITED = (
    "action, outcome, operation, resource_type, resource_id, patient_id, client_id, "
    "organization_id, subject, purpose, consent_ids, detail_code"
)


@pytest_asyncio.fixture
async def built(database_url: str) -> dataset.Dataset:
    await dataset.build(database_url, REFERRALS, seed=7)
    return await dataset.describe(database_url, REFERRALS)


@pytest_asyncio.fixture
async def token(client: httpx.AsyncClient, pool: asyncpg.Pool, built: dataset.Dataset) -> str:
    made = await create_client(
        pool, organization_id=built.caller_organization_id, name="Bench", scopes=["system/*.cruds"]
    )
    assert made.secret is not None
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.cruds"},
        auth=(made.client.client_id, made.secret),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest_asyncio.fixture
async def floor_client(
    client: httpx.AsyncClient, settings: Settings, built: dataset.Dataset
) -> AsyncIterator[httpx.AsyncClient]:
    jwks = (await client.get("/.well-known/jwks.json")).json()
    app = floor.create_app(built.url, jwks, settings.base_url)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://floor") as http:
            yield http


async def _audited(pool: asyncpg.Pool, action: Any) -> Counter[tuple[Any, ...]]:
    """The audit rows `action` writes (as a multiset: the order within a request is free)."""
    before = await pool.fetchval("SELECT coalesce(max(xid::text::bigint), 0) FROM audit_events")
    await action()
    rows = await pool.fetch(
        f"SELECT {_AUDITED} FROM audit_events WHERE xid::text::bigint > $1", before
    )
    return Counter(
        tuple(tuple(sorted(value)) if isinstance(value, list) else value for value in row.values())
        for row in rows
    )


def _patients(edges: list[dict[str, Any]]) -> list[Any]:
    return [edge["node"]["patient"] for edge in edges]


async def test_the_floor_answers_the_inbox_as_peerbridge_does(
    client: httpx.AsyncClient,
    floor_client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    token: str,
) -> None:
    headers = {"authorization": f"Bearer {token}"}
    answers: dict[str, Any] = {}

    async def graphql() -> None:
        response = await client.post("/graphql", json={"query": INBOX_QUERY}, headers=headers)
        answers["graphql"] = response.json()

    async def bare() -> None:
        answers["floor"] = (await floor_client.get("/floor/inbox", headers=headers)).json()

    peerbridge_rows = await _audited(pool, graphql)
    floor_rows = await _audited(pool, bare)

    edges = answers["graphql"]["data"]["referrals"]["edges"]
    found = answers["floor"]["referrals"]
    assert len(edges) == len(found) == floor.PAGE
    assert [e["node"]["id"] for e in edges] == [r["id"] for r in found]
    assert _patients(edges) == [r["patient"] for r in found]
    assert [e["node"]["program"] for e in edges] == [r["program"] for r in found]
    assert [e["node"]["status"].lower().replace("_", "-") for e in edges] == [
        r["status"] for r in found
    ]
    # The data has every case: redacted referrals, withheld patients, shown ones.
    redacted = sum(r["redacted"] for r in found)
    withheld = sum(r["patient"] is None and not r["redacted"] for r in found)
    assert redacted > 0 and withheld > 0 and redacted + withheld < floor.PAGE
    assert floor_rows == peerbridge_rows


async def test_the_floor_reads_a_referral_as_peerbridge_does(
    client: httpx.AsyncClient,
    floor_client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    token: str,
) -> None:
    headers = {"authorization": f"Bearer {token}"}
    inbox = (await floor_client.get("/floor/inbox", headers=headers)).json()["referrals"]
    cases = [
        next(r for r in inbox if r["redacted"]),
        next(r for r in inbox if r["patient"] is None and not r["redacted"]),
        next(r for r in inbox if r["patient"] is not None),
    ]
    answers: dict[str, Any] = {}
    for case in cases:
        async def graphql(wanted: str = case["id"]) -> None:
            body = {"query": REFERRAL_QUERY, "variables": {"id": wanted}}
            answers["graphql"] = (await client.post("/graphql", json=body, headers=headers)).json()

        async def bare(wanted: str = case["id"]) -> None:
            response = await floor_client.get(f"/floor/referral/{wanted}", headers=headers)
            answers["floor"] = response.json()

        peerbridge_rows = await _audited(pool, graphql)
        floor_rows = await _audited(pool, bare)
        assert answers["graphql"]["data"]["referral"]["id"] == answers["floor"]["id"]
        assert answers["graphql"]["data"]["referral"]["patient"] == answers["floor"]["patient"]
        assert floor_rows == peerbridge_rows


async def test_the_floor_refuses_without_a_valid_token(
    floor_client: httpx.AsyncClient, token: str
) -> None:
    assert (await floor_client.get("/floor/inbox")).status_code == 401
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = await floor_client.get("/floor/inbox", headers={"authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_the_generator_is_reproducible(built: dataset.Dataset, pool: asyncpg.Pool) -> None:
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM referrals) AS referrals, "
        "(SELECT count(*) FROM patients) AS patients, "
        "(SELECT count(*) FROM consents) AS consents, "
        "(SELECT count(*) FROM referral_transitions) AS transitions, "
        "(SELECT count(*) FROM consents WHERE revoked) AS revoked"
    )
    # The templates (one referral, patient, consent) come on top of the generated rows.
    assert counts["referrals"] == REFERRALS + 1
    assert counts["patients"] == REFERRALS // 2 + 1
    assert counts["consents"] == REFERRALS + 1
    assert counts["transitions"] > REFERRALS
    assert 0 < counts["revoked"] < REFERRALS // 4
    ids = await pool.fetch(
        "SELECT id FROM referrals WHERE id = md5('7:referral:' || 0)::uuid "
        "OR id = md5('7:referral:' || $1::integer)::uuid",
        REFERRALS - 1,
    )
    assert len(ids) == 2
