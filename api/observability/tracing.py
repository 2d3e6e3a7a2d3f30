"""OpenTelemetry traces: off by default, on with the standard `OTEL_*` variables.

`OTEL_TRACES_EXPORTER=otlp` (or just `OTEL_EXPORTER_OTLP_ENDPOINT` /
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) exports over OTLP/HTTP; `console` prints spans;
`none` or unset (without an endpoint) leaves tracing off at no cost. `OTEL_SDK_DISABLED=true`
turns it off whatever else is set. The SDK reads the rest (`OTEL_SERVICE_NAME`, headers,
sampler) itself.

What a span carries, and what it never does: a server span per HTTP request named by method
and door (`GET fhir`), with the path but never the query string (FHIR search parameters name
people); a span per GraphQL operation named by its schema root field (`query referrals`),
never the document, the variables or the client's operation name; a span per SQL statement
with the statement text (parameterized: no values) and never its parameters.

The trace id is the request's one id: the audit rows of a request and its access-log line
carry the id of its trace (`request_trace_id`), which continues a caller's `traceparent`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from api.observability.http import door_of

TRACER_NAME = "peerbridge"


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def request_trace_id(scope: Scope) -> str | None:
    """The request's trace id (32 hex digits): its span's when traced (which continues the
    caller's `traceparent`), else the caller's `traceparent`'s, else None."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return format(context.trace_id, "032x")
    for name, value in scope["headers"]:
        if name == b"traceparent":
            match = _TRACEPARENT.match(value.decode("latin-1").strip())
            return str(match.group(1)) if match else None
    return None


def _exporter_from_environment() -> SpanExporter | None:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    endpoint_set = any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    default = "otlp" if endpoint_set else "none"
    chosen = os.environ.get("OTEL_TRACES_EXPORTER", default).strip().lower()
    if chosen == "none":
        return None
    if chosen == "console":
        return ConsoleSpanExporter()
    if chosen == "otlp":
        # Imported only when used: the exporter pulls in protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={chosen!r}: PeerBridge exports otlp, console or none")


def provider_from_environment() -> TracerProvider | None:
    """A tracer provider exporting as the `OTEL_*` variables say, or None (tracing off)."""
    exporter = _exporter_from_environment()
    if exporter is None:
        return None
    service = os.environ.get("OTEL_SERVICE_NAME") or "peerbridge"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return f"{scope.get('method', 'WS')} {door_of(scope.get('path', ''))}", {}


def middleware(provider: TracerProvider) -> list[Middleware]:
    """Outermost middleware: a server span per request (continuing an incoming
    `traceparent`); and every asyncpg statement becomes a child span (statement text only,
    never its parameters: asyncpg is patched once per process)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)
    return [
        Middleware(_HideQueryString),
        Middleware(
            OpenTelemetryMiddleware,
            default_span_details=_span_details,
            tracer_provider=provider,
            exclude_spans=["receive", "send"],
        ),
        Middleware(_RestoreQueryString),
    ]


def untraced() -> None:
    """Undo the asyncpg patching (for tests that traced an app)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]


_SAVED_QUERY = "peerbridge.query_string"


class _HideQueryString:
    """The tracing middleware records the URL: it sees the request without its query
    string, which `_RestoreQueryString` gives back to the app below it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        hidden = dict(scope, query_string=b"")
        hidden[_SAVED_QUERY] = scope.get("query_string", b"")
        await self.app(hidden, receive, send)


class _RestoreQueryString:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _SAVED_QUERY in scope:
            scope = dict(scope, query_string=scope.pop(_SAVED_QUERY))
        await self.app(scope, receive, send)
