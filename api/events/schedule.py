"""The event schedule, every PEERBRIDGE_EVENTS_SCHEDULE_INTERVAL_S seconds, in `serve` (an app
lifespan part) and in `peerbridge worker`.

Each round raises the first-contact escalations that fell due (services/timeliness.py) and
prunes outbox events past PEERBRIDGE_OUTBOX_RETENTION_DAYS. Replicas may all run it: timers are
claimed with SKIP LOCKED, and a delete finds nothing another replica already deleted. Timers
live in the database, so an escalation due while no process ran is raised by the first round
after a start.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette

from api.db import outbox
from api.db.uow import PostgresUnitOfWork
from api.periodic import Periodic, running
from api.services import timeliness
from api.settings import Settings


async def run_once(pool: asyncpg.Pool, settings: Settings) -> None:
    """One round of the schedule."""
    await timeliness.escalate_due(PostgresUnitOfWork(pool))
    async with pool.acquire() as connection:
        await outbox.prune(connection, settings.outbox_retention_days)


def schedule(pool: asyncpg.Pool, settings: Settings) -> Periodic:
    """A round now and then every interval until cancelled; a failed round is retried."""
    return Periodic(
        "event schedule", settings.events_schedule_interval_s, lambda: run_once(pool, settings)
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    loops = [schedule(app.state.pool, settings)] if settings.events_schedule_interval_s > 0 else []
    async with running(*loops):
        yield
