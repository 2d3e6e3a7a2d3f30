"""Housekeeping on a schedule, so no table grows without bound: every
PEERBRIDGE_HOUSEKEEPING_INTERVAL_S seconds (first round one interval after start), delete
idempotency keys older than PEERBRIDGE_IDEMPOTENCY_KEY_RETENTION_H hours and client-assertion
`jti`s whose assertions have expired. It runs in `serve` (an app lifespan part) and in
`peerbridge worker`; replicas may all run it (deleting twice deletes nothing). Delivered
notifications are pruned by the delivery worker itself (PEERBRIDGE_DELIVERY_RETENTION_DAYS);
outbox rows by the event schedule (api/events/schedule.py, PEERBRIDGE_OUTBOX_RETENTION_DAYS).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import asyncpg
from starlette.applications import Starlette

from api.db.housekeeping import prune_assertion_jtis, prune_idempotency_keys
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


async def run(pool: asyncpg.Pool, settings: Settings) -> None:
    """Prune every interval until cancelled; a failed round (database away) is retried."""
    while True:
        await asyncio.sleep(settings.housekeeping_interval_s)
        try:
            await prune_once(pool, settings)
        except Exception as error:  # keep serving; the next round deletes what this one left
            _log.warning("housekeeping failed (%s); retrying next round", type(error).__name__)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.housekeeping_interval_s == 0:
        yield
        return
    task = asyncio.create_task(run(app.state.pool, settings), name="housekeeping")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
