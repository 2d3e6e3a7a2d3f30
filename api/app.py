"""The one composition root: `create_app(settings)` wires routes, middleware and the lifespan.

Each door plugs in with one line below: its module exposes `routes(settings) -> list[BaseRoute]`
(GraphQL at /graphql, FHIR at /fhir, OAuth at /oauth and /.well-known). Long-lived parts that
need the pool (outbox worker, subscription fan-out) plug into `_LIFESPAN_PARTS`. Request-time
code reaches shared resources through `request.app.state.settings` and `request.app.state.pool`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from opentelemetry.sdk.trace import TracerProvider
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from api import door_refusals, health, housekeeping, static_assets
from api.auth import audit_schedule
from api.auth import routes as auth_routes
from api.auth import runtime as auth_runtime
from api.auth.middleware import AuthenticationMiddleware
from api.console import routes as console_routes
from api.db.pool import create_pool
from api.delivery import runtime as delivery_runtime
from api.events import runtime as events_runtime
from api.events import schedule as events_schedule
from api.integrations.fhir.rest import routes as fhir_routes
from api.middleware import AccessLogMiddleware, BodySizeLimitMiddleware, RetryLaterMiddleware
from api.observability import http as observability_http
from api.observability import tracing
from api.rate_limits import RateLimitMiddleware
from api.schema import http as graphql_http
from api.settings import Settings

RouteBuilder = Callable[[Settings], Sequence[BaseRoute]]
LifespanPart = Callable[[Starlette], AbstractAsyncContextManager[None]]

_ROUTE_BUILDERS: tuple[RouteBuilder, ...] = (
    health.routes,
    observability_http.routes,
    auth_routes.routes,
    graphql_http.routes,
    fhir_routes.routes,
    static_assets.routes,
    console_routes.routes,
)

# Entered in order after the pool opens, exited in reverse before it closes.
_LIFESPAN_PARTS: tuple[LifespanPart, ...] = (
    auth_runtime.lifespan,
    events_runtime.lifespan,
    events_schedule.lifespan,
    audit_schedule.lifespan,  # needs the auth runtime's signing keys
    delivery_runtime.lifespan,  # needs the auth runtime's key-encryption key
    housekeeping.lifespan,
)

# Requests still running at shutdown get this long to give their connections back.
_POOL_CLOSE_TIMEOUT_S = 10.0

_log = logging.getLogger(__name__)


def _middleware(settings: Settings, tracer_provider: TracerProvider | None) -> list[Middleware]:
    # Outermost first: the access log also records the 413s the body limit answers, and the
    # 503s and 429s answered for whatever is below. The body limit and authentication refuse
    # in the shape of the door a path belongs to.
    traces = tracing.middleware(tracer_provider) if tracer_provider is not None else []
    return [
        *traces,
        Middleware(AccessLogMiddleware),
        Middleware(RetryLaterMiddleware, retry_later=door_refusals.retry_later),
        Middleware(
            BodySizeLimitMiddleware,
            max_bytes=settings.max_request_body_bytes,
            door_refusal=door_refusals.door_refusal,
        ),
        Middleware(AuthenticationMiddleware, door_refusal=door_refusals.door_refusal),
        Middleware(RateLimitMiddleware, settings=settings),
    ]


def create_app(settings: Settings, tracer_provider: TracerProvider | None = None) -> Starlette:
    """Build the ASGI app; the database pool opens and closes with the app's lifespan.
    Traces go to `tracer_provider`, else as the `OTEL_*` variables say (default: off)."""
    tracer_provider = tracer_provider or tracing.provider_from_environment()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.pool = await create_pool(settings)
        try:
            async with AsyncExitStack() as parts:
                for part in _LIFESPAN_PARTS:
                    await parts.enter_async_context(part(app))
                yield
        finally:
            await _close_pool(app)
            if tracer_provider is not None:
                tracer_provider.force_flush()

    routes = [route for build in _ROUTE_BUILDERS for route in build(settings)]
    app = Starlette(
        routes=routes,
        middleware=_middleware(settings, tracer_provider),
        exception_handlers=door_refusals.exception_handlers(),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tracer_provider = tracer_provider
    return app


async def _close_pool(app: Starlette) -> None:
    pool = app.state.pool
    try:
        await asyncio.wait_for(pool.close(), _POOL_CLOSE_TIMEOUT_S)
    except TimeoutError:
        _log.warning("database connections still busy at shutdown; closing them")
        pool.terminate()
