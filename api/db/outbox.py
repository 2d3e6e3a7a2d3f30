"""The transactional outbox: events written with the change, delivered later (at least once).

Each insert also queues a `NOTIFY` on `OUTBOX_CHANNEL` in the same transaction, so PostgreSQL
announces the event exactly when (and only if) the change commits. The payload is the outbox
row's id and nothing else: listeners read the rows (ids, statuses, codes; never PHI) themselves.

Commit order (migration 0016): `id` is taken at insert, so ids do not follow commit order.
`sequence()` numbers committed rows after the fact, one sequencer at a time under an advisory
lock held to its commit, so positions become visible in increasing order and a reader that
resumes "after position p" never misses a row numbered later behind p. Every process that
listens runs it when notified, so rows are numbered a moment after they commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from api.domain.events import DomainEvent, PublishedEvent

OUTBOX_CHANNEL = "peerbridge_outbox"

# Any constant works as long as every PeerBridge process uses the same one: "PBSEQNCE" in hex.
_SEQUENCER_LOCK = 0x50425345514E4345
_SEQUENCE_BATCH = 1000

_INSERT_AND_NOTIFY = (
    "WITH stored AS (INSERT INTO outbox (event_type, aggregate_type, aggregate_id, "
    "organization_ids, payload) VALUES ($1, $2, $3, $4, $5) RETURNING id) "
    f"SELECT pg_notify('{OUTBOX_CHANNEL}', id::text) FROM stored"
)
_COLUMNS = (
    "id, position, event_id, event_type, aggregate_type, aggregate_id, organization_ids, "
    "payload, created_at"
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


async def sequence(connection: asyncpg.Connection) -> int:
    """Give every committed, unnumbered event its position (in id order); the last position
    given so far. Waits for a sequencer running elsewhere, so afterwards every event that had
    committed before the call has a position at or below the answer."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _SEQUENCER_LOCK)
        while True:
            ids = [
                row["id"]
                for row in await connection.fetch(
                    "SELECT id FROM outbox WHERE position IS NULL ORDER BY id LIMIT $1",
                    _SEQUENCE_BATCH,
                )
            ]
            if ids:
                # Only the sequencer draws from this sequence, under the lock: consecutive.
                await connection.execute(
                    "UPDATE outbox SET position = numbered.position FROM ("
                    "SELECT id, nextval('outbox_positions') AS position "
                    "FROM unnest($1::bigint[]) WITH ORDINALITY AS u(id, n) ORDER BY n) numbered "
                    "WHERE outbox.id = numbered.id",
                    ids,
                )
            if len(ids) < _SEQUENCE_BATCH:
                break
        last: int = await connection.fetchval(
            "SELECT coalesce(max(position), 0) FROM outbox"
        )
    return last


async def sequenced_events(
    connection: asyncpg.Connection,
    after: int,
    limit: int,
    organization_id: UUID | None = None,
) -> list[PublishedEvent]:
    """Up to `limit` numbered events after position `after`, in commit order (only those
    naming `organization_id` when given)."""
    where = "position > $1"
    arguments: list[Any] = [after, limit]
    if organization_id is not None:
        where += " AND $3 = ANY(organization_ids)"
        arguments.append(organization_id)
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM outbox WHERE {where} ORDER BY position LIMIT $2", *arguments
    )
    return [_published(row) for row in rows]


async def published_events(
    connection: asyncpg.Connection, outbox_ids: Sequence[int]
) -> list[PublishedEvent]:
    """The committed outbox rows with these ids, in id order (absent ones skipped)."""
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id",
        list(outbox_ids),
    )
    return [_published(row) for row in rows]


async def holds(connection: asyncpg.Connection, position: int) -> bool:
    """Whether the outbox still holds the event at `position` (not pruned)."""
    found: bool = await connection.fetchval(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE position = $1)", position
    )
    return found


async def prune(connection: asyncpg.Connection, older_than_days: float) -> int:
    """Delete published events written more than `older_than_days` ago; how many. A cursor
    naming one of them then fails with EVENTS_EXPIRED."""
    status = await connection.execute(
        "DELETE FROM outbox WHERE published_at IS NOT NULL AND position IS NOT NULL "
        "AND created_at < now() - make_interval(secs => $1)",
        older_than_days * 86400.0,
    )
    return int(status.split()[-1])


def _published(row: asyncpg.Record) -> PublishedEvent:
    return PublishedEvent(
        position=row["position"],
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


def _payload(value: object) -> dict[str, object]:
    # The pool decodes jsonb; a bare connection hands back the text.
    decoded = json.loads(value) if isinstance(value, str) else value
    return dict(decoded) if isinstance(decoded, dict) else {}
