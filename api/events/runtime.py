"""The events room's long-lived part, built once per app in the lifespan (after the pool opens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from api.db.pool import connect
from api.events.fanout import OutboxFanOut
from api.settings import Settings

# How the listener connection shows in `pg_stat_activity`.
LISTENER_APPLICATION_NAME = "peerbridge-events"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """App lifespan part: `app.state.events`, the outbox fan-out subscriptions listen on."""
    settings: Settings = app.state.settings
    async with OutboxFanOut(
        lambda: connect(settings, application_name=LISTENER_APPLICATION_NAME),
        app.state.pool.acquire,
    ).running() as fanout:
        app.state.events = fanout
        yield
