"""Idempotency records over asyncpg.

A key is reserved before anything is read or written (`reserve`): a transaction-scoped advisory
lock on the key, held until commit or rollback. A concurrent request with the same key waits for
the first one to end and then finds its stored answer, so it replays instead of writing twice or
colliding on a unique constraint.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from api.domain.errors import IdempotencyKeyInUse

# How long a duplicate waits for the first request with its key before giving up with
# IDEMPOTENCY_KEY_IN_USE (retryable). Well below the pool's statement timeout, so the wait ends
# in that answer rather than in a cancelled statement.
WAIT_FOR_FIRST_REQUEST_MS = 5000

_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"


def _lock_name(organization_id: UUID, client_id: str, key: str) -> str:
    return f"idempotency:{organization_id}:{client_id}:{key}"


class PostgresIdempotencyRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def reserve(self, organization_id: UUID, client_id: str, key: str) -> None:
        """Hold the key until this transaction ends; wait a bounded time for a holder."""
        name = _lock_name(organization_id, client_id, key)
        if await self._db.fetchval(_TRY_LOCK, name):
            return
        # Contended: wait with a lock timeout of our own, then put the caller's back.
        previous = await self._db.fetchval("SELECT current_setting('lock_timeout')")
        await self._db.execute(
            "SELECT set_config('lock_timeout', $1, true)", f"{WAIT_FOR_FIRST_REQUEST_MS}ms"
        )
        try:
            await self._db.execute(_LOCK, name)
        except (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError):
            raise IdempotencyKeyInUse(
                "another request with this idempotency key is still in progress; retry shortly"
            ) from None
        await self._db.execute("SELECT set_config('lock_timeout', $1, true)", previous)

    async def find(
        self, organization_id: UUID, client_id: str, key: str
    ) -> tuple[str, str, dict[str, Any]] | None:
        row = await self._db.fetchrow(
            "SELECT operation, request_hash, response FROM idempotency_keys "
            "WHERE organization_id = $1 AND client_id = $2 AND key = $3",
            organization_id,
            client_id,
            key,
        )
        return (row["operation"], row["request_hash"], row["response"]) if row else None

    async def add(
        self,
        organization_id: UUID,
        client_id: str,
        key: str,
        operation: str,
        request_hash: str,
        response: dict[str, Any],
    ) -> None:
        await self._db.execute(
            "INSERT INTO idempotency_keys (organization_id, client_id, key, operation, "
            "request_hash, response) VALUES ($1, $2, $3, $4, $5, $6)",
            organization_id,
            client_id,
            key,
            operation,
            request_hash,
            response,
        )
