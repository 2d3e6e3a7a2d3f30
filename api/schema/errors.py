"""The one place GraphQL errors get their wire form: `extensions.code` from the domain error's
stable code; anything unexpected is masked. Logs carry codes, paths and exception types only:
never messages, variables or results, which may hold PHI."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError

from api.domain.errors import DomainError, Forbidden, Invalid, MalformedRequest, Retryable

MASKED_MESSAGE = "Unexpected error."
INTERNAL = "INTERNAL_SERVER_ERROR"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
BAD_USER_INPUT = "BAD_USER_INPUT"
BAD_REQUEST = "BAD_REQUEST"
UNAVAILABLE = "UNAVAILABLE"

# Refusals answered before any operation runs (middleware, body parsing): their HTTP status.
# Operations that run answer 200 (401 for no token) with the code in `extensions.code`.
_HTTP_STATUS_OF = {
    BAD_REQUEST: 400,
    "INVALID_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "NOT_SUPPORTED": 405,
    "TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
}

_log = logging.getLogger("peerbridge.graphql")


def domain_error_of(error: GraphQLError) -> DomainError | None:
    original = error.original_error
    while isinstance(original, GraphQLError):
        original = original.original_error
    return original if isinstance(original, DomainError) else None


def _is_document_error(error: GraphQLError) -> bool:
    """Parse and validation errors (and bad variables) are about the document, not the data:
    raised by the validators themselves, or by a scalar's parser at a place in the document."""
    return error.path is None and (error.original_error is None or bool(error.locations))


def error_code(error: GraphQLError) -> str:
    domain = domain_error_of(error)
    if isinstance(domain, MalformedRequest):
        return BAD_REQUEST
    if domain is not None:
        return domain.code
    if isinstance(error, GraphQLSyntaxError):
        return PARSE_FAILED
    if _is_document_error(error):
        return BAD_USER_INPUT if error.message.startswith("Variable '$") else VALIDATION_FAILED
    return INTERNAL


def format_error(error: GraphQLError) -> dict[str, Any]:
    """The error as the client sees it: a safe message, where, and `extensions.code`."""
    code = error_code(error)
    extensions: dict[str, Any] = {"code": code}
    domain = domain_error_of(error)
    if isinstance(domain, Invalid) and any(d.field for d in domain.details):
        extensions["details"] = [{"field": d.field, "message": d.message} for d in domain.details]
    if isinstance(domain, Forbidden) and domain.needed_scope:
        extensions["neededScope"] = domain.needed_scope
    if isinstance(domain, Retryable):
        extensions["retryAfterSeconds"] = domain.retry_after_s
    formatted: dict[str, Any] = {
        "message": error.message if code != INTERNAL else MASKED_MESSAGE,
        "extensions": extensions,
    }
    if error.locations:
        formatted["locations"] = [
            {"line": loc.line, "column": loc.column} for loc in error.locations
        ]
    if error.path is not None:
        formatted["path"] = error.path
    return formatted


def retry_of_failed_request(response: dict[str, Any]) -> tuple[int, int] | None:
    """(HTTP status, seconds to wait) when the whole request failed for a reason that passes
    (database unavailable: 503, rate limit: 429): no data, and every error retryable. None
    when the request ran, even in part."""
    errors = response.get("errors")
    data = response.get("data")
    if not errors or (data is not None and any(v is not None for v in data.values())):
        return None
    extensions = [error.get("extensions", {}) for error in errors]
    waits = [entry.get("retryAfterSeconds") for entry in extensions]
    whole_seconds = [wait for wait in waits if isinstance(wait, int)]
    if len(whole_seconds) != len(waits):
        return None
    unavailable = any(entry.get("code") == UNAVAILABLE for entry in extensions)
    return (503 if unavailable else 429), max(whole_seconds)


def refusal(error: DomainError) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body refusing a whole request, in the GraphQL response shape."""
    formatted = format_error(GraphQLError(error.message, original_error=error))
    return _HTTP_STATUS_OF.get(formatted["extensions"]["code"], 400), {"errors": [formatted]}


def log_errors(errors: list[GraphQLError]) -> None:
    """Domain errors at debug (they are answers, not faults); unexpected ones with their
    traceback frames but without the exception text, which may echo data."""
    for error in errors:
        code = error_code(error)
        if code != INTERNAL:
            _log.debug("graphql error %s at %s", code, _where(error))
            continue
        original = error.original_error
        _log.error(
            "unexpected %s at %s\n%s",
            type(original).__qualname__ if original else "error",
            _where(error),
            _frames(original),
        )


def _frames(error: BaseException | None) -> str:
    """Where it happened: file, line and function of each frame; no source text, no values."""
    if error is None:
        return ""
    return "\n".join(
        f"  {frame.filename}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(error.__traceback__)
    )


def _where(error: GraphQLError) -> str:
    return ".".join(str(part) for part in error.path) if error.path else "(document)"
