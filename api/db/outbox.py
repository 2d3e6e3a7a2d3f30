"""The transactional outbox: events written with the change, delivered later (at least once).

Each insert also queues a `NOTIFY` on `OUTBOX_CHANNEL` in the same transaction, so PostgreSQL
announces the event exactly when (and only if) the change commits. The payload is the outbox
row's id and nothing else: listeners read the row (ids, statuses, codes; never PHI) themselves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from api.domain.events import DomainEvent, PublishedEvent

OUTBOX_CHANNEL = "peerbridge_outbox"

_INSERT_AND_NOTIFY = (
    "WITH stored AS (INSERT INTO outbox (event_type, aggregate_type, aggregate_id, "
    "organization_ids, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id) "
    f"SELECT pg_notify('{OUTBOX_CHANNEL}', id::text) FROM stored"
)


class PostgresOutboxRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add_many(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        await self._db.executemany(
            _INSERT_AND_NOTIFY,
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


async def published_events(
    connection: asyncpg.Connection, positions: Sequence[int]
) -> list[PublishedEvent]:
    """The committed outbox rows at these positions, in position order (absent ones skipped)."""
    rows = await connection.fetch(
        "SELECT id, event_id, event_type, aggregate_type, aggregate_id, organization_ids, "
        "payload, created_at FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(positions),
    )
    return [
        PublishedEvent(
            position=row["id"],
            event_id=row["event_id"],
            occurred_at=row["created_at"],
            event=DomainEvent(
                row["event_type"],
                row["aggregate_type"],
                row["aggregate_id"],
                tuple(row["organization_ids"]),
                _payload(row["payload"]),
            ),
        )
        for row in rows
    ]


def _payload(value: object) -> dict[str, object]:
    # The pool decodes jsonb; a bare connection hands back the text.
    decoded = json.loads(value) if isinstance(value, str) else value
    return dict(decoded) if isinstance(decoded, dict) else {}
