"""Request authentication: bearer token (RFC 6750 2.1) → `Principal` on `scope["state"]`.

No Authorization header: principal None, and each door decides (FHIR 401, GraphQL
UNAUTHENTICATED). A Bearer token that fails any check: 401 `invalid_token` here, before any
door runs. Public paths (health, discovery, JWKS, token endpoint) skip token checks entirely.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.errors import invalid_token_headers, invalid_token_response
from api.auth.jws import TokenRejected
from api.auth.runtime import AuthRuntime
from api.domain.errors import Unauthenticated
from api.middleware import DoorRefusal
from api.observability.metrics import TOKEN_REFUSALS
from api.observability.tracing import request_trace_id

log = logging.getLogger(__name__)

# /metrics checks its own scraper token (api/observability/http.py), not an OAuth one.
PUBLIC_PATH_PREFIXES = ("/healthz", "/readyz", "/.well-known/", "/oauth/", "/metrics")


class AuthenticationMiddleware:
    """Pure ASGI, so streaming responses and WebSockets pass through untouched."""

    def __init__(
        self,
        app: ASGIApp,
        public_path_prefixes: Sequence[str] = PUBLIC_PATH_PREFIXES,
        door_refusal: DoorRefusal | None = None,
    ) -> None:
        self.app = app
        self._public = tuple(public_path_prefixes)
        self._door_refusal = door_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = None
        token = _bearer(scope)
        if token is None or scope["path"].startswith(self._public):
            await self.app(scope, receive, send)
            return
        runtime: AuthRuntime = scope["app"].state.auth
        client = scope.get("client")
        try:
            state["principal"] = await runtime.authenticator.authenticate(
                token, source_ip=client[0] if client else None, trace_id=request_trace_id(scope)
            )
        except TokenRejected as rejected:
            log.info("bearer token refused (%s)", rejected.reason)
            expired = rejected.reason == "expired"
            TOKEN_REFUSALS.labels("bearer_expired" if expired else "bearer_invalid").inc()
            if scope["type"] == "websocket":
                # Closing before accept makes the server answer the handshake with 403.
                await send({"type": "websocket.close", "code": 1008})
                return
            await self._refusal(scope["path"], _description(rejected.reason))(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)

    def _refusal(self, path: str, description: str) -> ASGIApp:
        """401 in the shape of the door at `path` (RFC 6750 body elsewhere), always with the
        RFC 6750 `WWW-Authenticate: Bearer ... error="invalid_token"` challenge."""
        if self._door_refusal is not None:
            shaped = self._door_refusal(
                path, Unauthenticated(description), invalid_token_headers(description)
            )
            if shaped is not None:
                return shaped
        return invalid_token_response(description)


def _bearer(scope: Scope) -> str | None:
    """The Bearer credentials, or None when the request carries no Bearer Authorization."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            if scheme.lower() == "bearer":
                # An empty Bearer header is a present but unusable token, not an absent one.
                return credentials.strip()
            return None
    return None


def _description(reason: str) -> str:
    # Expiry is the one reason a well-behaved client acts on (fetch a new token); the rest
    # stay generic so the response is no oracle for forging tokens.
    return "the access token expired" if reason == "expired" else "the access token is invalid"
