"""The event schedule, every PEERBRIDGE_EVENTS_SCHEDULE_INTERVAL_S seconds, in `serve` (an app
lifespan part) and in `peerbridge worker`.

Each round raises the first-contact escalations that fell due (services/timeliness.py) and
prunes outbox events past PEERBRIDGE_OUTBOX_RETENTION_DAYS. Replicas may all run it: timers are
claimed with SKIP LOCKED, and a delete finds nothing another replica already deleted. Timers
live in the database, so an escalation due while no process ran is raised by the first round
after a start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import asyncpg
from starlette.applications import Starlette

from api.db import outbox
from api.db.uow import PostgresUnitOfWork
from api.services import timeliness
from api.settings import Settings

_log = logging.getLogger(__name__)


async def run_once(pool: asyncpg.Pool, settings: Settings) -> None:
    """One round of the schedule."""
    await timeliness.escalate_due(PostgresUnitOfWork(pool))
    async with pool.acquire() as connection:
        await outbox.prune(connection, settings.outbox_retention_days)


async def run(pool: asyncpg.Pool, settings: Settings) -> None:
    """A round now and then every interval until cancelled; a failed round is retried."""
    while True:
        try:
            await run_once(pool, settings)
        except Exception as error:  # keep serving; the next round picks up where this stopped
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # being stopped: whatever the cancelled round ran into, stop
            _log.warning("event schedule failed (%s); retrying next round", type(error).__name__)
        await asyncio.sleep(settings.events_schedule_interval_s)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.events_schedule_interval_s <= 0:
        yield
        return
    task = asyncio.create_task(run(app.state.pool, settings), name="event schedule")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
