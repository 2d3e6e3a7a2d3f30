"""Idempotency records over asyncpg."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg


class PostgresIdempotencyRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

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
