"""Pure-ASGI middleware every door shares: access log, 503/429 with Retry-After, request body
limit.

Pure ASGI (not BaseHTTPMiddleware) so streaming responses and WebSockets pass through untouched
and the per-request cost stays a few microseconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.domain.errors import DomainError, Retryable, TooLarge
from api.observability.http import record_request
from api.observability.tracing import request_trace_id

# (path, error, headers) → the refusal in the shape of the door serving `path`, or None for
# paths outside the doors (see api/door_refusals.py, which create_app passes in).
DoorRefusal = Callable[[str, DomainError, Mapping[str, str]], ASGIApp | None]

# (path, error) → 503 or 429 with Retry-After in the shape of the door serving `path`.
RetryLater = Callable[[str, Retryable], ASGIApp]

_access_log = logging.getLogger("peerbridge.access")
_log = logging.getLogger(__name__)

_MAX_LOGGED_PATH = 200


class AccessLogMiddleware:
    """One line per HTTP request: method, path, status, duration and the trace id its audit
    rows carry (see `api.observability.tracing`). Nothing else. And the request's metrics:
    one count by door, operation and status, one duration observation (`record_request`).

    Never the query string (FHIR search parameters name patients), headers (tokens) or bodies.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            seconds = time.perf_counter() - started
            record_request(scope, status, seconds)
            _access_log.info(
                "%s %s %d %.1fms trace=%s",
                scope["method"],
                _printable(scope["path"]),
                status,
                seconds * 1000,
                request_trace_id(scope) or "-",
            )


def _printable(path: str) -> str:
    """The path, truncated, with control characters replaced so it cannot forge log lines."""
    return "".join(c if c.isprintable() else "?" for c in path[:_MAX_LOGGED_PATH])


class RetryLaterMiddleware:
    """A request the service cannot serve right now (`Retryable`: the database is down or its
    pool has no free connection, a rate limit) answers 503 or 429 with `Retry-After` in its
    door's shape, wherever below it was raised (authentication, a route): never the 500 of
    an unexpected crash, so clients can tell "try again shortly" from "broken"."""

    def __init__(self, app: ASGIApp, retry_later: RetryLater) -> None:
        self.app = app
        self._retry_later = retry_later

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_and_note_start(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_start)
        except Retryable as error:
            if response_started:
                raise
            _log.warning("%s %s refused for now: %s", scope["method"],
                         _printable(scope["path"]), error.code)
            await self._retry_later(scope["path"], error)(scope, receive, send)


class _BodyTooLarge(BaseException):
    """Aborts the app mid-read. A BaseException (as CancelledError is) so that handlers which
    mask every `Exception` as a 500 (the FHIR routes do) let it through to the 413 here."""


class BodySizeLimitMiddleware:
    """Answer 413 to requests whose body exceeds `max_bytes`, declared or streamed."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, door_refusal: DoorRefusal | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._door_refusal = door_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared_length(scope) > self.max_bytes:
            await self._reject(scope, receive, send)
            return

        received = 0
        exceeded = response_started = False

        async def receive_within_limit() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def send_and_note_start(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # whatever the app answers to _BodyTooLarge (e.g. a caught 500): ours
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_and_note_start)
        except _BodyTooLarge:
            pass
        if exceeded and not response_started:
            await self._reject(scope, receive, send)

    @staticmethod
    def _declared_length(scope: Scope) -> int:
        for name, value in scope["headers"]:
            if name == b"content-length":
                # The server (h11/httptools) already refused malformed values; 19+ digits is
                # over any limit (and int() refuses thousands of digits).
                return int(value[:19]) if value.isdigit() else 0
        return 0

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._door_refusal is not None:
            error = TooLarge(f"the request body is larger than {self.max_bytes} bytes")
            # The unread rest of the body must not be taken for the next request.
            response = self._door_refusal(scope["path"], error, {"connection": "close"})
            if response is not None:
                await response(scope, receive, send)
                return
        body = json.dumps({"error": "request_too_large", "max_bytes": self.max_bytes}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
