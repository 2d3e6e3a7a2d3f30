"""Per-client rate limits: 429 with `Retry-After` in each door's shape once a client's bucket
is empty (GraphQL `RATE_LIMITED`, FHIR OperationOutcome `throttled`, OAuth `slow_down` on the
token endpoint, per source address)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fhir_support import Fhir
from graphql_support import GraphQL
from network import build_network

from api.app import create_app
from api.rate_limits import TokenBuckets
from api.settings import Settings

_PROGRAMS = "{ peerPrograms(first: 1) { edges { node { id } } } }"
# Next to no refill while a test runs: the burst is what a client gets.
_SLOW = 0.01


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    now = [100.0]
    buckets = TokenBuckets(rate=2.0, burst=2, clock=lambda: now[0])

    assert [buckets.take("a"), buckets.take("a")] == [0, 0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0  # each key has its own bucket
    now[0] += 0.75
    assert buckets.take("a") == 0


@pytest.fixture
async def limited(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncpg.Pool]]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        rate_limit_client_rps=_SLOW,
        rate_limit_client_burst=2,
        rate_limit_token_rps=_SLOW,
        rate_limit_token_burst=3,
        audit_checkpoint_interval_s=0,
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, app.state.pool


async def test_a_client_over_its_limit_gets_429_with_retry_after_in_each_door(
    limited: tuple[httpx.AsyncClient, asyncpg.Pool],
) -> None:
    client, pool = limited
    network = await build_network(pool)
    gql = await GraphQL.as_organization(client, pool, network.clinic)  # token 1 of 3
    fhir = await Fhir.as_organization(client, pool, network.peer)  # token 2 of 3

    graphql = [await gql.post(_PROGRAMS) for _ in range(3)]
    search = [await fhir.get("Task?_count=1") for _ in range(3)]
    tokens = [
        await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=("someone", "secret"))
        for _ in range(2)
    ]

    assert [r.status_code for r in graphql] == [200, 200, 429]
    assert graphql[2].json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert int(graphql[2].headers["retry-after"]) >= 1
    assert [r.status_code for r in search] == [200, 200, 429]
    assert search[2].json()["issue"][0]["code"] == "throttled"
    assert int(search[2].headers["retry-after"]) >= 1
    # The third token request still reaches the endpoint (and fails authentication).
    assert [r.status_code for r in tokens] == [401, 429]
    assert tokens[1].json()["error"] == "slow_down"
    assert int(tokens[1].headers["retry-after"]) >= 1
