"""The deliveries queue over asyncpg: fan-out from the outbox, claims, outcomes, dead letters.

Every step is one short transaction, so any number of workers on any number of machines share
the queue:
- fan-out turns committed outbox rows into deliveries (one per matching subscription) and
  marks the rows published; one worker at a time does it (a transaction-scoped advisory lock),
  so each subscription numbers its events in outbox order;
- a claim takes due deliveries `FOR UPDATE SKIP LOCKED`, only the oldest pending one of each
  (subscription, referral), and leases them: `next_attempt_at` moves past the send, so a
  worker that dies mid-send leaves them to be claimed again when the lease ends (at least once);
- the outcome is written after the send: delivered, or retried later, or dead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.db.outbox import published_events, sequence
from api.db.subscriptions import DELIVERY_CHANNEL, SUBSCRIPTION_COLUMNS, subscription_of
from api.domain.deliveries import (
    Delivery,
    DeliveryStatus,
    NotificationKind,
    Subscription,
    SubscriptionStatus,
    fan_out,
)

# pg_try_advisory_xact_lock key of the fan-out step ("PBfanout" as a number).
_FAN_OUT_LOCK = 0x5042_6661_6E6F_7574
_DELIVERY_COLUMNS = (
    "d.id, d.notification_id, d.subscription_id, d.kind, d.event_id, d.event_type, d.focus_id, "
    "d.event_number, d.occurred_at, d.status, d.attempts, d.next_attempt_at, d.last_error, "
    "d.created_at, d.delivered_at"
)


async def _without_waiting_for_disk(conn: asyncpg.Connection) -> None:
    """This transaction's commit returns before its WAL reaches disk. Safe for the queue's
    bookkeeping, which delivery is at least once anyway: a crash can only lose the last
    moments' fan-outs (their outbox rows are unpublished again, in the same transaction),
    leases (claimed again) or outcomes (sent again); never an event."""
    await conn.execute("SET LOCAL synchronous_commit TO off")


def delivery_of(row: Any) -> Delivery:
    return Delivery(
        id=row["id"],
        notification_id=row["notification_id"],
        subscription_id=row["subscription_id"],
        kind=NotificationKind(row["kind"]),
        event_id=row["event_id"],
        event_type=row["event_type"],
        focus_id=row["focus_id"],
        event_number=row["event_number"],
        occurred_at=row["occurred_at"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        delivered_at=row["delivered_at"],
    )


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with what sending it needs."""

    delivery: Delivery
    subscription: Subscription
    secret_sealed: bytes
    kek_id: str


async def fan_out_outbox(pool: asyncpg.Pool, batch: int) -> int:
    """Turn up to `batch` unpublished outbox rows into deliveries; how many rows it took
    (0 also when another worker holds the fan-out). Events go in commit order (their outbox
    position, numbered first), so each subscription numbers them in that order."""
    async with pool.acquire() as conn:
        await sequence(conn)
        async with conn.transaction():
            return await _fan_out(conn, batch)


async def _fan_out(conn: asyncpg.Connection, batch: int) -> int:
    await _without_waiting_for_disk(conn)
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _FAN_OUT_LOCK):
        return 0
    ids = [
        row["id"]
        for row in await conn.fetch(
            "SELECT id FROM outbox WHERE published_at IS NULL AND position IS NOT NULL "
            "ORDER BY position LIMIT $1 FOR UPDATE SKIP LOCKED",
            batch,
        )
    ]
    if not ids:
        return 0
    events = sorted(await published_events(conn, ids), key=lambda e: e.sequenced)
    organizations = {o for e in events for o in e.event.organization_ids}
    rows = await conn.fetch(
        f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE status = 'active' "
        "AND organization_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        list(organizations),
    )
    planned = fan_out(events, [subscription_of(row) for row in rows])
    numbers: dict[UUID, int] = {row["id"]: row["events_since_start"] for row in rows}
    values = []
    for subscription, published in planned:
        numbers[subscription.id] += 1
        values.append(
            (
                subscription.id,
                published.event_id,
                published.event.event_type,
                published.event.aggregate_id,
                numbers[subscription.id],
                published.occurred_at,
            )
        )
    if values:
        await conn.executemany(
            "INSERT INTO deliveries (subscription_id, kind, event_id, event_type, focus_id, "
            "event_number, occurred_at, ordering_key) "
            "VALUES ($1, 'event-notification', $2, $3, $4, $5, $6, $4)",
            values,
        )
        await conn.executemany(
            "UPDATE subscriptions SET events_since_start = $2 WHERE id = $1",
            [(s, n) for s, n in numbers.items()],
        )
        await conn.execute(f"SELECT pg_notify('{DELIVERY_CHANNEL}', '')")
    await conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", ids)
    return len(ids)


async def claim(pool: asyncpg.Pool, limit: int, lease_s: float) -> list[Claimed]:
    """Lease up to `limit` due deliveries, each the oldest pending of its ordering key."""
    async with pool.acquire() as conn, conn.transaction():
        await _without_waiting_for_disk(conn)
        rows = await conn.fetch(
            "WITH due AS (SELECT d.id FROM deliveries d WHERE d.status = 'pending' "
            "AND d.next_attempt_at <= now() AND NOT EXISTS (SELECT 1 FROM deliveries e "
            "WHERE e.subscription_id = d.subscription_id AND e.ordering_key = d.ordering_key "
            "AND e.status = 'pending' AND e.id < d.id) "
            "ORDER BY d.next_attempt_at, d.id LIMIT $1 FOR UPDATE OF d SKIP LOCKED), "
            "leased AS (UPDATE deliveries d SET attempts = d.attempts + 1, "
            "next_attempt_at = now() + make_interval(secs => $2) FROM due WHERE d.id = due.id "
            "RETURNING d.*) "
            f"SELECT {_DELIVERY_COLUMNS}, s.secret_sealed, s.kek_id, "
            + ", ".join(f"s.{c.strip()} AS s_{c.strip()}" for c in SUBSCRIPTION_COLUMNS.split(","))
            + " FROM leased d JOIN subscriptions s ON s.id = d.subscription_id ORDER BY d.id",
            limit,
            lease_s,
        )
    return [
        Claimed(
            delivery_of(row),
            subscription_of({k[2:]: row[k] for k in row.keys() if k.startswith("s_")}),
            row["secret_sealed"],
            row["kek_id"],
        )
        for row in rows
    ]


async def delivered(pool: asyncpg.Pool, sent: Sequence[Delivery]) -> None:
    """Sent and acknowledged (2xx), in one transaction; a handshake's subscription becomes
    active."""
    if not sent:
        return
    subscription_ids = sorted({d.subscription_id for d in sent})  # one lock order for all
    handshakes = [d.subscription_id for d in sent if d.kind is NotificationKind.HANDSHAKE]
    async with pool.acquire() as conn, conn.transaction():
        await _without_waiting_for_disk(conn)
        await conn.execute(
            "UPDATE deliveries SET status = 'delivered', delivered_at = now(), last_error = NULL "
            "WHERE id = ANY($1::bigint[])",
            [d.id for d in sent],
        )
        await conn.execute(
            "UPDATE subscriptions SET last_sent_at = now(), "
            "status = CASE WHEN id = ANY($2::uuid[]) AND status = 'requested' THEN 'active' "
            "ELSE status END, "
            "updated_at = CASE WHEN id = ANY($2::uuid[]) THEN now() ELSE updated_at END "
            "WHERE id = ANY($1::uuid[])",
            subscription_ids,
            handshakes,
        )


async def failed(
    pool: asyncpg.Pool, delivery: Delivery, error: str, retry_in_s: float, max_attempts: int
) -> bool:
    """Record a failed try: retried after `retry_in_s`, or dead once `max_attempts` are spent
    (a dead handshake puts its subscription in `error`). True when it is dead."""
    dead = delivery.attempts >= max_attempts
    async with pool.acquire() as conn, conn.transaction():
        await _without_waiting_for_disk(conn)
        await conn.execute(
            "UPDATE deliveries SET last_error = $2, status = $3, "
            "next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
            delivery.id,
            error[:200],
            (DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING).value,
            retry_in_s,
        )
        if dead and delivery.kind is NotificationKind.HANDSHAKE:
            await conn.execute(
                "UPDATE subscriptions SET status = 'error', updated_at = now() WHERE id = $1",
                delivery.subscription_id,
            )
    return dead


async def seconds_until_due(pool: asyncpg.Pool) -> float | None:
    """How long until the next pending delivery falls due (≤ 0: now); None when none is."""
    async with pool.acquire() as conn:
        due = await conn.fetchval(
            "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM deliveries "
            "WHERE status = 'pending'"
        )
    return None if due is None else float(due)


async def schedule_heartbeats(pool: asyncpg.Pool) -> int:
    """Queue a heartbeat for each active subscription quiet for its heartbeat period."""
    async with pool.acquire() as conn:
        status = await conn.execute(
            "INSERT INTO deliveries (subscription_id, kind, ordering_key) "
            "SELECT s.id, 'heartbeat', s.id FROM subscriptions s WHERE s.status = 'active' "
            "AND s.heartbeat_period_s IS NOT NULL "
            "AND coalesce(s.last_sent_at, s.updated_at) "
            "    + make_interval(secs => s.heartbeat_period_s) <= now() "
            "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id "
            "AND d.status = 'pending')"
        )
    return int(status.split()[-1])


async def prune_delivered(pool: asyncpg.Pool, older_than_days: float) -> int:
    """Delete deliveries delivered more than `older_than_days` ago; how many."""
    async with pool.acquire() as conn:
        status = await conn.execute(
            "DELETE FROM deliveries WHERE status = 'delivered' "
            "AND delivered_at < now() - make_interval(secs => $1)",
            older_than_days * 86400.0,
        )
    return int(status.split()[-1])


async def list_deliveries(pool: asyncpg.Pool, *, dead_only: bool, limit: int) -> list[Delivery]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d "
            "WHERE NOT $1 OR d.status = 'dead' ORDER BY d.id DESC LIMIT $2",
            dead_only,
            limit,
        )
    return [delivery_of(row) for row in rows]


async def retry(pool: asyncpg.Pool, delivery_ids: Sequence[int] | None) -> list[int]:
    """Put dead deliveries (these, or all when None) back in the queue with fresh attempts;
    a retried handshake puts its subscription back to `requested`. The ids retried."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() "
            "WHERE status = 'dead' AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) "
            "RETURNING id, subscription_id, kind",
            None if delivery_ids is None else list(delivery_ids),
        )
        handshakes = [r["subscription_id"] for r in rows if r["kind"] == "handshake"]
        if handshakes:
            await conn.execute(
                "UPDATE subscriptions SET status = $2 WHERE id = ANY($1::uuid[]) "
                "AND status = 'error'",
                handshakes,
                SubscriptionStatus.REQUESTED.value,
            )
        if rows:
            await conn.execute(f"SELECT pg_notify('{DELIVERY_CHANNEL}', '')")
    return sorted(r["id"] for r in rows)


@dataclass(frozen=True)
class QueueState:
    """For metrics: how far delivery is behind (no PHI, counts and ages only)."""

    outbox_unpublished: int
    outbox_oldest_unpublished_at: datetime | None
    pending: int
    dead: int


async def queue_state(pool: asyncpg.Pool) -> QueueState:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished, "
            "(SELECT min(created_at) FROM outbox WHERE published_at IS NULL) AS oldest, "
            "(SELECT count(*) FROM deliveries WHERE status = 'pending') AS pending, "
            "(SELECT count(*) FROM deliveries WHERE status = 'dead') AS dead"
        )
    return QueueState(row["unpublished"], row["oldest"], row["pending"], row["dead"])
