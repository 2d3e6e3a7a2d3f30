"""Refusals answered before a door's own code runs — a bad bearer token (401), a body over the
limit (413), no route (404), a method the route does not take (405), a crash (500) — in the
shape of the door the path belongs to: an OperationOutcome under /fhir, GraphQL errors with
`extensions.code` under /graphql, an HTML page under /console. Other paths (OAuth, probes,
discovery) keep their own JSON shape: RFC 6749/6750 `{"error", "error_description"}`.

The middleware sits below the doors, so `create_app` hands it `door_refusal` rather than the
middleware importing the doors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.console.web import error_page as console_error_page
from api.db.errors import unavailable
from api.domain.errors import DomainError, NotSupported, Retryable, UnknownAddress
from api.integrations.fhir.rest.operation_outcomes import internal_error, operation_outcome
from api.integrations.fhir.rest.routes import fhir_response
from api.schema.errors import MASKED_MESSAGE, refusal

_INTERNAL = "INTERNAL_SERVER_ERROR"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def door_refusal(path: str, error: DomainError, headers: Mapping[str, str]) -> Response | None:
    """The refusal in the shape of the door at `path`; None for paths outside both doors.
    A refusal for now (`Retryable`: rate limit, database unavailable) carries `Retry-After`."""
    if isinstance(error, Retryable):
        headers = {**headers, "retry-after": str(error.retry_after_s)}
    if _under(path, "/fhir"):
        status, outcome = operation_outcome(error)
        return fhir_response(status, outcome, dict(headers))
    if _under(path, "/graphql"):
        status, body = refusal(error)
        return JSONResponse(body, status, headers=dict(headers))
    if _under(path, "/console"):
        return console_error_page(error, headers)
    return None


async def _no_route(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: DomainError
    if exc.status_code == 405:
        error = NotSupported(f"this address does not take {request.method} requests")
    else:
        error = UnknownAddress("nothing is served at this address")
    headers = dict(exc.headers or {})
    response = door_refusal(request.url.path, error, headers)
    if response is not None:
        return response
    code = "method_not_allowed" if exc.status_code == 405 else "not_found"
    body = {"error": code, "error_description": error.message}
    return JSONResponse(body, exc.status_code, headers=headers)


async def _crash(request: Request, exc: Exception) -> Response:
    """Last resort (ServerErrorMiddleware still re-raises, so the server logs the fault).
    A database outage that reached this far untranslated is still a 503, not a 500."""
    path = request.url.path
    outage = unavailable(exc)
    if outage is not None:
        return retry_later(path, outage)
    if _under(path, "/fhir"):
        status, outcome = internal_error()
        return fhir_response(status, outcome)
    if _under(path, "/console"):
        return console_error_page(None)
    body: dict[str, Any]
    if _under(path, "/graphql"):
        body = {"errors": [{"message": MASKED_MESSAGE, "extensions": {"code": _INTERNAL}}]}
    else:
        body = {"error": "server_error", "error_description": "internal error"}
    return JSONResponse(body, 500)


# RFC 6749 5.2 has no code for these; `temporarily_unavailable` is its 503 (4.1.2.1), and
# `slow_down` the device grant's (RFC 8628 3.5) "poll less often".
_OAUTH_CODE_OF = {"UNAVAILABLE": "temporarily_unavailable", "RATE_LIMITED": "slow_down"}
_RETRY_STATUS_OF = {"UNAVAILABLE": 503, "RATE_LIMITED": 429}


def retry_later(path: str, error: Retryable) -> Response:
    """503 or 429 with `Retry-After` in the shape of the door at `path`; elsewhere (the token
    endpoint, probes, discovery) as an RFC 6749 error body."""
    response = door_refusal(path, error, {"cache-control": "no-store"})
    if response is not None:
        return response
    body = {"error": _OAUTH_CODE_OF.get(error.code, "temporarily_unavailable"),
            "error_description": error.message}
    headers = {"retry-after": str(error.retry_after_s), "cache-control": "no-store"}
    return JSONResponse(body, _RETRY_STATUS_OF.get(error.code, 503), headers=headers)


def exception_handlers() -> dict[Any, Any]:
    """For `Starlette(exception_handlers=...)`: routing refusals and crashes in door shape."""
    return {404: _no_route, 405: _no_route, Exception: _crash}
