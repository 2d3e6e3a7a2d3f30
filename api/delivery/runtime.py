"""App lifespan part: the delivery worker inside `serve` (PEERBRIDGE_DELIVERY_WORKER_IN_SERVE)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from api.auth.runtime import AuthRuntime
from api.db.pool import connect
from api.delivery.worker import DeliveryWorker
from api.periodic import running
from api.settings import Settings

# How the worker's listener connection shows in `pg_stat_activity`.
WORKER_APPLICATION_NAME = "peerbridge-delivery"


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.delivery_worker_in_serve:
        yield
        return
    runtime: AuthRuntime = app.state.auth
    worker = DeliveryWorker(
        app.state.pool,
        settings,
        runtime.kek,
        lambda: connect(settings, application_name=WORKER_APPLICATION_NAME),
    )
    async with running(worker):
        yield
