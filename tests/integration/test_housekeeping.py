"""Housekeeping deletes idempotency keys past their retention and expired assertion jtis, and
keeps the rest."""

from __future__ import annotations

import asyncpg
from network import Network

from api import housekeeping
from api.settings import Settings


async def test_a_round_deletes_what_expired_and_keeps_the_rest(
    pool: asyncpg.Pool, network: Network, settings: Settings
) -> None:
    org = network.clinic.id
    await pool.executemany(
        "INSERT INTO idempotency_keys (organization_id, client_id, key, operation, "
        "request_hash, response, created_at) VALUES ($1, 'c', $2, 'op', 'h', '{}', "
        "now() - $3::text::interval)",
        [(org, "old", "25 hours"), (org, "fresh", "1 hour")],
    )
    await pool.executemany(
        "INSERT INTO oauth_assertion_jtis (client_id, jti, expires_at) "
        "VALUES ('c', $1, now() + $2::text::interval)",
        [("expired", "-1 minute"), ("live", "4 minutes")],
    )

    deleted = await housekeeping.prune_once(
        pool, settings.model_copy(update={"idempotency_key_retention_h": 24.0})
    )

    keys = await pool.fetch("SELECT key FROM idempotency_keys WHERE client_id = 'c'")
    assert [row["key"] for row in keys] == ["fresh"]
    jtis = await pool.fetch("SELECT jti FROM oauth_assertion_jtis WHERE client_id = 'c'")
    assert [row["jti"] for row in jtis] == ["live"]
    assert deleted == (1, 1)
