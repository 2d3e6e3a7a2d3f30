"""FHIR Subscriptions over asyncpg; creating one queues its handshake in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from api.domain.deliveries import (
    NotificationKind,
    PayloadContent,
    Subscription,
    SubscriptionStatus,
)

DELIVERY_CHANNEL = "peerbridge_deliveries"

SUBSCRIPTION_COLUMNS = (
    "id, organization_id, client_id, scopes, topic, filters, endpoint, headers, content, "
    "heartbeat_period_s, timeout_s, status, resource, events_since_start, version, "
    "created_at, updated_at"
)


def _json(value: Any) -> Any:
    # The pool decodes jsonb; a bare connection hands back the text.
    return json.loads(value) if isinstance(value, str) else value


def subscription_of(row: Mapping[str, Any]) -> Subscription:
    return Subscription(
        id=row["id"],
        organization_id=row["organization_id"],
        client_id=row["client_id"],
        scopes=row["scopes"],
        topic=row["topic"],
        filters=tuple((str(n), str(v)) for n, v in _json(row["filters"])),
        endpoint=row["endpoint"],
        headers=tuple(row["headers"]),
        content=PayloadContent(row["content"]),
        heartbeat_period_s=row["heartbeat_period_s"],
        timeout_s=row["timeout_s"],
        status=SubscriptionStatus(row["status"]),
        resource=_json(row["resource"]),
        events_since_start=row["events_since_start"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresSubscriptionRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(
        self, subscription: Subscription, secret_sealed: bytes, kek_id: str
    ) -> Subscription:
        """Store it as `requested` and queue its handshake (the worker is told on commit)."""
        row = await self._db.fetchrow(
            "INSERT INTO subscriptions (id, organization_id, client_id, scopes, topic, filters, "
            "endpoint, headers, content, heartbeat_period_s, timeout_s, status, secret_sealed, "
            "kek_id, resource) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, "
            f"$13, $14, $15::jsonb) RETURNING {SUBSCRIPTION_COLUMNS}",
            subscription.id,
            subscription.organization_id,
            subscription.client_id,
            subscription.scopes,
            subscription.topic,
            json.dumps([list(f) for f in subscription.filters]),
            subscription.endpoint,
            list(subscription.headers),
            subscription.content.value,
            subscription.heartbeat_period_s,
            subscription.timeout_s,
            SubscriptionStatus.REQUESTED.value,
            secret_sealed,
            kek_id,
            json.dumps(dict(subscription.resource)),
        )
        await self._db.execute(
            "INSERT INTO deliveries (subscription_id, kind, ordering_key) VALUES ($1, $2, $1)",
            subscription.id,
            NotificationKind.HANDSHAKE.value,
        )
        await self._db.execute(f"SELECT pg_notify('{DELIVERY_CHANNEL}', '')")
        return subscription_of(row)

    async def get(self, subscription_id: UUID) -> Subscription | None:
        row = await self._db.fetchrow(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE id = $1", subscription_id
        )
        return subscription_of(row) if row else None

    async def of_organization(
        self, organization_id: UUID, after: UUID | None, limit: int
    ) -> Sequence[Subscription]:
        rows = await self._db.fetch(
            f"SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE organization_id = $1 "
            "AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            organization_id,
            after,
            limit,
        )
        return [subscription_of(row) for row in rows]

    async def delete(self, subscription_id: UUID) -> None:
        """Gone with its pending and past deliveries."""
        await self._db.execute("DELETE FROM subscriptions WHERE id = $1", subscription_id)
