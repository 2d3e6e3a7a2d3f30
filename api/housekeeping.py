"""Housekeeping on a schedule, so no table grows without bound: every
PEERBRIDGE_HOUSEKEEPING_INTERVAL_S seconds (first round one interval after start), delete
idempotency keys older than PEERBRIDGE_IDEMPOTENCY_KEY_RETENTION_H hours and client-assertion
`jti`s whose assertions have expired. It runs in `serve` (an app lifespan part) and in
`peerbridge worker`; replicas may all run it (deleting twice deletes nothing). Delivered
notifications are pruned by the delivery worker itself (PEERBRIDGE_DELIVERY_RETENTION_DAYS);
outbox rows by the event schedule (api/events/schedule.py, PEERBRIDGE_OUTBOX_RETENTION_DAYS).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from starlette.applications import Starlette

from api.db.housekeeping import prune_assertion_jtis, prune_idempotency_keys
from api.periodic import Periodic, running
from api.settings import Settings

_log = logging.getLogger(__name__)


async def prune_once(pool: asyncpg.Pool, settings: Settings) -> tuple[int, int]:
    """One round: (idempotency keys, assertion jtis) deleted."""
    retention = timedelta(hours=settings.idempotency_key_retention_h)
    keys = await prune_idempotency_keys(pool, retention)
    jtis = await prune_assertion_jtis(pool)
    if keys or jtis:
        _log.info("housekeeping: deleted %d idempotency keys, %d assertion jtis", keys, jtis)
    return keys, jtis


def housekeeping(pool: asyncpg.Pool, settings: Settings) -> Periodic:
    """Prune every interval (the first one interval after start) until cancelled; a failed
    round (database away) is retried."""
    return Periodic(
        "housekeeping",
        settings.housekeeping_interval_s,
        lambda: _prune(pool, settings),
        first_now=False,
    )


async def _prune(pool: asyncpg.Pool, settings: Settings) -> None:
    await prune_once(pool, settings)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    loops = [housekeeping(app.state.pool, settings)] if settings.housekeeping_interval_s else []
    async with running(*loops):
        yield
