"""The transactional outbox: events written with the change, delivered later (at least once)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from api.domain.events import DomainEvent


class PostgresOutboxRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add_many(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        await self._db.executemany(
            "INSERT INTO outbox (event_type, aggregate_type, aggregate_id, organization_ids, "
            "payload) VALUES ($1, $2, $3, $4, $5)",
            [
                (
                    e.event_type,
                    e.aggregate_type,
                    e.aggregate_id,
                    list(e.organization_ids),
                    e.payload,
                )
                for e in events
            ],
        )
