"""OAuth HTTP routes: token endpoint, JWKS, discovery (all public: no bearer token needed)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from api.auth import discovery
from api.auth.errors import NO_STORE, OAuthError, invalid_request
from api.auth.runtime import AuthRuntime
from api.observability.metrics import TOKEN_REFUSALS, TOKENS_ISSUED
from api.settings import Settings

_MAX_FORM_BYTES = 64 * 1024
# Public documents: short enough that a rotation is seen soon, long enough to spare the server.
_PUBLIC_CACHE = {"cache-control": "public, max-age=300"}


def _runtime(request: Request) -> AuthRuntime:
    runtime: AuthRuntime = request.app.state.auth
    return runtime


async def token(request: Request) -> Response:
    """`POST /oauth/token` (RFC 6749 4.4, SMART Backend Services)."""
    try:
        params = await _form(request)
        issued = await _runtime(request).token_endpoint.issue(
            params, request.headers.get("authorization")
        )
    except OAuthError as error:
        TOKEN_REFUSALS.labels(error.error).inc()
        return error.response()
    TOKENS_ISSUED.inc()
    return JSONResponse(issued.body(), headers=NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body (RFC 6749 4.4.2); a repeated parameter is an error (RFC 6749 3.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise invalid_request("the body must be application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise invalid_request("the request body is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise invalid_request("the body is not valid form data") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise invalid_request(f"parameter {name} is repeated")
        params[name] = value
    return params


async def jwks(request: Request) -> Response:
    """Our public signing keys (RFC 7517 5): active and retired, never a private member."""
    ring = await _runtime(request).keys.ring()
    return JSONResponse(ring.jwks(), headers=_PUBLIC_CACHE)


async def smart_configuration(request: Request) -> Response:
    config = _runtime(request).config
    return JSONResponse(discovery.smart_configuration(config), headers=_PUBLIC_CACHE)


async def authorization_server(request: Request) -> Response:
    config = _runtime(request).config
    return JSONResponse(discovery.authorization_server_metadata(config), headers=_PUBLIC_CACHE)


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/jwks", jwks, methods=["GET"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", authorization_server, methods=["GET"]),
    ]
