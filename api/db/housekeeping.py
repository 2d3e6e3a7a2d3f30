"""Deleting what has expired, in batches so no statement holds many row locks for long."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

# Rows per DELETE: a few milliseconds of work each, so writers never queue behind a prune.
_BATCH = 5000


async def prune_idempotency_keys(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Forget idempotency keys (and their stored answers) older than `older_than`: a retry
    after that is a new request. Returns how many were deleted."""
    return await _in_batches(
        pool,
        "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(SELECT ctid FROM idempotency_keys "
        "WHERE created_at < now() - $1::interval LIMIT $2))",
        older_than,
    )


async def prune_assertion_jtis(pool: asyncpg.Pool) -> int:
    """Forget client-assertion `jti`s whose assertions have expired (a replay fails on `exp`
    by then). Returns how many were deleted."""
    return await _in_batches(
        pool,
        "DELETE FROM oauth_assertion_jtis WHERE ctid = ANY(ARRAY(SELECT ctid FROM "
        "oauth_assertion_jtis WHERE expires_at < now() LIMIT $1))",
    )


async def _in_batches(pool: asyncpg.Pool, statement: str, *arguments: object) -> int:
    deleted = 0
    while True:
        async with pool.acquire() as conn:
            status: str = await conn.execute(statement, *arguments, _BATCH)
        count = int(status.split()[-1])
        deleted += count
        if count < _BATCH:
            return deleted
