"""`/metrics` (Prometheus text format) and the count of every HTTP request (`record_request`).

Each request costs one counter increment and one histogram observation, nothing per field or
per row. A door names the request's operation by setting
`scope["state"]["metrics_operation"]` to a value from a fixed set (see `api.observability.metrics`).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from datetime import UTC, datetime

import asyncpg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from api.db.deliveries import queue_state
from api.domain.errors import Unavailable
from api.observability.metrics import (
    DELIVERIES_DEAD,
    DELIVERIES_PENDING,
    OUTBOX_LAG_SECONDS,
    OUTBOX_UNPUBLISHED,
    REQUEST_SECONDS,
    REQUESTS,
)
from api.settings import Settings

# A scrape must not wait out the pool's acquire timeout for the queue's numbers.
_QUEUE_READ_TIMEOUT_S = 1.0

OPERATION_KEY = "metrics_operation"

# Path prefix → door label; the first match wins.
_DOORS = (
    ("/graphql", "graphql"),
    ("/fhir", "fhir"),
    ("/oauth/", "oauth"),
    ("/.well-known/", "oauth"),
    ("/healthz", "probe"),
    ("/readyz", "probe"),
    ("/metrics", "metrics"),
    ("/console", "console"),
)


def door_of(path: str) -> str:
    for prefix, door in _DOORS:
        if path.startswith(prefix):
            return door
    return "other"


def record_request(scope: Scope, status: int, seconds: float) -> None:
    """Count one answered HTTP request by door, operation and status; observe its duration.
    Called once per request by the access log middleware (`api.middleware`)."""
    door = door_of(scope["path"])
    operation = scope.get("state", {}).get(OPERATION_KEY, "-")
    REQUESTS.labels(door, operation, str(status)).inc()
    REQUEST_SECONDS.labels(door).observe(seconds)


def exposition() -> bytes:
    """The metrics of this process, or of every worker when they share a multiprocess dir."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    if settings.metrics_token is not None:
        sent = request.headers.get("authorization", "")
        expected = f"Bearer {settings.metrics_token}"
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return JSONResponse(
                {"error": "invalid_token", "error_description": "the metrics token is required"},
                401,
                headers={"www-authenticate": 'Bearer realm="metrics"'},
            )
    await _read_delivery_queue(request.app.state.pool)
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST,
                    headers={"cache-control": "no-store"})


async def _read_delivery_queue(pool: asyncpg.Pool) -> None:
    """Set the outbox and delivery gauges from the database; left as they were when it does
    not answer (the scrape still succeeds: 503 counts and the pool gauges say why)."""
    try:
        state = await asyncio.wait_for(queue_state(pool), _QUEUE_READ_TIMEOUT_S)
    except (Unavailable, TimeoutError):
        return
    oldest = state.outbox_oldest_unpublished_at
    OUTBOX_LAG_SECONDS.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0)
    OUTBOX_UNPUBLISHED.set(state.outbox_unpublished)
    DELIVERIES_PENDING.set(state.pending)
    DELIVERIES_DEAD.set(state.dead)


def routes(settings: Settings) -> list[BaseRoute]:
    """`/metrics`: open in development; in production only with `PEERBRIDGE_METRICS_TOKEN`
    (else not served at all: put a scraper-only token on it, or leave it off)."""
    if settings.is_production and settings.metrics_token is None:
        return []
    return [Route("/metrics", metrics, methods=["GET"])]
