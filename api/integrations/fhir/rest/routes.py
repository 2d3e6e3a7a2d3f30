"""The FHIR REST door at /fhir: `application/fhir+json`, OperationOutcome errors, ETags."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api import wire_json
from api.db.errors import unavailable
from api.db.uow import PostgresUnitOfWork
from api.domain.errors import DomainError, Retryable, Unauthenticated, UnsupportedMediaType
from api.domain.principal import Principal
from api.input_guard import check_parameters, check_text
from api.integrations.fhir.rest.bundles import Conditions
from api.integrations.fhir.rest.capability import capability_statement
from api.integrations.fhir.rest.conditional import last_modified, not_modified
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.interactions import handle, metrics_label
from api.integrations.fhir.rest.operation_outcomes import (
    BadRequest,
    internal_error,
    operation_outcome,
)
from api.integrations.fhir.rest.validation import parse_json
from api.services.subscriptions import endpoint_policy
from api.settings import Settings

FHIR_JSON = "application/fhir+json; charset=utf-8"
# Bodies are read only when declared as JSON (R4 http.html#mime-type); parameters may follow.
_BODY_MEDIA_TYPES = frozenset({"application/fhir+json", "application/json"})
_log = logging.getLogger(__name__)


def fhir_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        wire_json.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)


def _error(error: DomainError, resource_type: str | None) -> Response:
    status, outcome = operation_outcome(error, resource_type=resource_type)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fhir"'
    if isinstance(error, Retryable):
        headers["Retry-After"] = str(error.retry_after_s)
    return fhir_response(status, outcome, headers)


def _base_url(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return f"{settings.base_url}/fhir"


async def metadata(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    return fhir_response(
        200,
        capability_statement(_base_url(request), f"{settings.base_url}/oauth/token", "0.1.0"),
    )


async def interaction(request: Request) -> Response:
    path = request.path_params.get("path", "")
    request.state.metrics_operation = metrics_label(request.method, path)
    # Body errors name elements of this type; query errors name the search parameter.
    resource_type = path.split("/", 1)[0] or None if request.method != "GET" else None
    try:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:
            raise Unauthenticated("a bearer access token is required")
        check_parameters(request.query_params.multi_items())
        body = await _body(request) if request.method in ("POST", "PUT") else None
        idempotency_key = request.headers.get("idempotency-key")
        if idempotency_key is not None:
            check_text(idempotency_key, "Idempotency-Key")
        pool = request.app.state.pool
        settings: Settings = request.app.state.settings
        ctx = FhirContext(
            principal,
            lambda: PostgresUnitOfWork(pool),
            _base_url(request),
            idempotency_key=idempotency_key,
            max_bundle_entries=settings.fhir_max_bundle_entries,
            max_included=settings.fhir_max_included,
            secrets_key=request.app.state.auth.kek,
            endpoint_policy=endpoint_policy(settings),
        )
        url = f"{path}?{request.url.query}" if request.url.query else path
        conditions = Conditions(
            request.headers.get("if-match"), request.headers.get("if-none-exist")
        )
        reply = await handle(ctx, request.method, url, body, conditions)
        unchanged = _is_instance_read(request.method, path) and not_modified(
            reply.resource,
            request.headers.get("if-none-match"),
            request.headers.get("if-modified-since"),
            datetime.now(UTC),
        )
    except DomainError as error:
        return _error(error, resource_type)
    except Exception as error:  # noqa: BLE001 - never leak detail; the type is enough to trace
        outage = unavailable(error)
        if outage is not None:
            return _error(outage, resource_type)
        _log.error("FHIR interaction failed", extra={"error_type": type(error).__name__})
        status, outcome = internal_error()
        return fhir_response(status, outcome)
    headers = {}
    if reply.etag:
        headers["ETag"] = reply.etag
    if reply.location:
        headers["Location"] = f"{ctx.base_url}/{reply.location}"
    last = last_modified(reply.resource)
    if last:
        headers["Last-Modified"] = last
    if unchanged:
        return Response(status_code=304, headers=headers)
    return fhir_response(reply.status, reply.resource, headers)


def _is_instance_read(method: str, path: str) -> bool:
    """read (`Type/id`) or vread (`Type/id/_history/vid`): the interactions a 304 may answer."""
    return method == "GET" and len([p for p in path.split("/") if p]) in (2, 4)


async def _body(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in _BODY_MEDIA_TYPES:
        raise UnsupportedMediaType(
            "send the body as Content-Type: application/fhir+json (or application/json)"
        )
    raw = await request.body()
    if not raw:
        raise BadRequest("the request has no body")
    settings: Settings = request.app.state.settings
    return parse_json(raw, max_depth=settings.max_json_depth)


def routes(settings: Settings) -> Sequence[BaseRoute]:
    """Mounted by `api.app.create_app`."""
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]
    return [
        Route("/fhir/metadata", metadata, methods=["GET"]),
        Route("/fhir", interaction, methods=["POST"]),
        Route("/fhir/{path:path}", interaction, methods=methods),
    ]
