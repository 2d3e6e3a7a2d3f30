"""`/graphql` on Starlette: context per request, CSRF refusal, errors in their wire form, and
subscriptions over a `graphql-transport-ws` WebSocket authenticated at `connection_init`."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from datetime import timedelta
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult
from strawberry.types.unset import UnsetType

from api.auth.jws import TokenRejected
from api.auth.runtime import AuthRuntime
from api.db.uow import PostgresUnitOfWork
from api.domain.errors import Invalid, MalformedRequest, Unauthenticated
from api.domain.principal import Principal
from api.input_guard import check_parameters, parse_json
from api.schema.context import GraphQLContext
from api.schema.errors import (
    BAD_REQUEST,
    format_error,
    refusal,
    retry_of_failed_request,
)
from api.schema.schema import PeerBridgeSchema, build_schema
from api.schema.trusted_documents import NOT_IN_SAFELIST, DocumentRefused, TrustedDocuments
from api.services.repositories import UnitOfWork
from api.settings import Settings
from api.static_assets import graphiql_page
from api.wire_json import dumps

# Form, multipart and text/plain POSTs are "simple" requests a browser sends cross-site without
# a CORS preflight; refusing them (as Apollo Router does) closes the CSRF door.
_ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/graphql-response+json"})

# A client has this long after opening the socket to send `connection_init`.
_CONNECTION_INIT_TIMEOUT = timedelta(seconds=10)
_MAX_OPERATIONS_PER_CONNECTION = 20

UnitOfWorkFor = Callable[[HTTPConnection], Callable[[], UnitOfWork]]

_log = logging.getLogger(__name__)


def _postgres_unit_of_work(request: HTTPConnection) -> Callable[[], UnitOfWork]:
    pool = request.app.state.pool
    return lambda: PostgresUnitOfWork(pool)


class _TransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """Errors in `next` messages get the wire form they have over HTTP (codes, masking); in
    allowlist mode only registered documents are subscribed."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        trusted: TrustedDocuments = self.view.trusted_documents  # type: ignore[attr-defined]
        pool = self.context.request.app.state.pool
        if self.connection_acknowledged and not await trusted.allowed(
            pool, message["payload"].get("query")
        ):
            refused: ErrorMessage = {
                "id": message["id"],
                "type": "error",
                "payload": [
                    {
                        "message": "QueryNotInSafelist: only registered operations run here",
                        "extensions": {"code": NOT_IN_SAFELIST},
                    }
                ],
            }
            await self.send_message(refused)
            return
        await super().handle_subscribe(message)

    async def _send_result_stream(
        self, operation: Operation[GraphQLContext, None], result_source: StreamResult
    ) -> None:
        await super()._send_result_stream(operation, _in_wire_form(result_source))


async def _in_wire_form(results: StreamResult) -> AsyncGenerator[Any, None]:
    async for result in results:
        for error in getattr(result, "errors", None) or ():
            formatted = format_error(error)
            error.message = formatted["message"]
            error.extensions = formatted["extensions"]
        yield result


class GraphQLEndpoint(GraphQL[GraphQLContext, None]):
    graphql_transport_ws_handler_class = _TransportWSHandler

    def __init__(
        self,
        schema: PeerBridgeSchema,
        settings: Settings,
        unit_of_work_for: UnitOfWorkFor = _postgres_unit_of_work,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphql_ide_enabled else None,
            allow_queries_via_get=True,
            multipart_uploads_enabled=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=_CONNECTION_INIT_TIMEOUT,
            max_subscriptions_per_connection=_MAX_OPERATIONS_PER_CONNECTION,
        )
        self._unit_of_work_for = unit_of_work_for
        self._max_json_depth = settings.max_json_depth
        self.trusted_documents = TrustedDocuments(settings, schema._schema)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self.run(WebSocket(scope, receive, send))
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = _csrf_refusal(request)
        if response is None:
            try:
                response = await self.run(request)
            except ClientDisconnect:  # gone before its body arrived: no one to answer
                return
            except HTTPException as error:
                response = _error_response(
                    error.status_code, error.reason, _CODE_OF_STATUS.get(error.status_code)
                )
            except Invalid as error:  # the input guard refused the body or a parameter
                status, body = refusal(error)
                response = JSONResponse(body, status_code=status)
            except DocumentRefused as refused:  # unknown persisted query, not allowlisted
                response = JSONResponse(refused.body, status_code=refused.status, headers=_UNCACHED)
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        """GraphiQL from the package's own files (strawberry's page loads them from a CDN)."""
        return graphiql_page()

    async def execute_single(  # noqa: PLR0913 (strawberry's signature)
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: GraphQLContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Trusted documents first: a persisted query's hash becomes its document, and in
        allowlist mode nothing unregistered runs (see api/schema/trusted_documents.py)."""
        request_data = await self.trusted_documents.resolve(
            request_data, request.app.state.pool, authenticated=context.caller is not None
        )
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    # --- the input guard: every JSON and parameter this door reads ---------------------------

    def parse_json(self, data: str | bytes) -> dict[str, object]:
        """A POST body: one GraphQL request, a JSON object (no batches, no bare values)."""
        body = parse_json(data, max_depth=self._max_json_depth)
        if not isinstance(body, dict):
            raise MalformedRequest(
                "the body must be one GraphQL request: a JSON object with a `query`"
            )
        return body

    def parse_query_params(self, params: Mapping[str, str | None]) -> dict[str, object]:
        """A GET request: `variables` and `extensions` are JSON, the rest plain text."""
        parsed: dict[str, object] = dict(params)
        check_parameters((name, value or "") for name, value in params.items())
        for name in ("variables", "extensions"):
            text = params.get(name)
            if text:
                parsed[name] = parse_json(text, max_depth=self._max_json_depth, root=_named(name))
        return parsed

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A plain JSON POST read without strawberry's media-type parse (it builds an
        `email.message.Message` per request: a fifth of an inbox request in a py-spy profile
        under load); GETs and streaming requests as strawberry reads them."""
        if (
            request.method != "POST"
            or _media_type(request.content_type or "") != "application/json"
            or self._get_stream_transport_from_headers(request.headers) is not None
        ):
            return await super().parse_http_body(request)
        data = self.parse_json(await request.get_body())
        for name, kind, what in _REQUEST_MEMBERS:
            if not isinstance(data.get(name), kind | None):
                raise HTTPException(
                    400, f"The GraphQL operation's `{name}` must be {what} or null, if provided."
                )
        return GraphQLRequestData(
            query=data.get("query"),  # type: ignore[arg-type]  # checked just above
            variables=data.get("variables"),  # type: ignore[arg-type]
            operation_name=data.get("operationName"),  # type: ignore[arg-type]
            extensions=data.get("extensions"),  # type: ignore[arg-type]
        )

    def encode_json(self, data: object) -> str:
        """WebSocket messages (text frames)."""
        return dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        """WebSocket messages: a refusal closes the socket as any non-JSON message does."""
        try:
            return parse_json(data, max_depth=self._max_json_depth)
        except Invalid as error:
            raise json.JSONDecodeError(error.message, "", 0) from None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> GraphQLContext:
        return GraphQLContext(
            request=request,
            response=response,
            caller=getattr(request.state, "principal", None),
            unit_of_work_factory=self._unit_of_work_for(request),
        )

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        """Authenticate `connection_init`: its `Authorization: Bearer <token>` entry (browsers
        cannot set WebSocket headers), else the handshake's header; no token, no connection."""
        token = _bearer(context.connection_params) or _bearer(context.request.headers)
        if not token:
            raise ConnectionRejectionError()
        runtime: AuthRuntime = context.request.app.state.auth
        client = context.request.client
        source_ip = client.host if client else None

        async def reauthenticate() -> Principal:
            try:
                return await runtime.authenticator.authenticate(token, source_ip=source_ip)
            except TokenRejected as rejected:
                _log.info("subscription token refused (%s)", rejected.reason)
                raise Unauthenticated(
                    "the access token expired: reconnect with a new one"
                    if rejected.reason == "expired"
                    else "the access token is invalid"
                ) from None

        try:
            context.caller = await reauthenticate()
        except Unauthenticated:
            raise ConnectionRejectionError() from None
        context.reauthenticate = reauthenticate
        return UnsetType()  # acknowledge without a payload

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(error) for error in result.errors]
        if result.extensions:
            response["extensions"] = result.extensions
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """A request that failed whole for a passing reason (database down, pool exhausted,
        rate limit) answers that reason's HTTP status with `Retry-After`, so clients and
        gateways that only read the status still back off and retry. The body is encoded once,
        as bytes (see api/wire_json.py)."""
        if isinstance(response_data, dict):
            retry = retry_of_failed_request(dict(response_data))
            if retry is not None:
                sub_response.status_code, retry_after_s = retry
                sub_response.headers["retry-after"] = str(retry_after_s)
        response = Response(
            dumps(response_data),
            status_code=sub_response.status_code or 200,
            media_type="application/json",
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response


def _named(name: str) -> Callable[[object], str]:
    return lambda _value: name


# The members of a GraphQL request body strawberry checks the types of (as it words them).
_REQUEST_MEMBERS = (
    ("query", str, "a string"),
    ("variables", dict, "an object"),
    ("extensions", dict, "an object"),
)


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _csrf_refusal(request: Request) -> Response | None:
    if request.method != "POST":
        return None
    media_type = _media_type(request.headers.get("content-type", ""))
    if media_type in _ACCEPTED_CONTENT_TYPES:
        return None
    return _error_response(
        415,
        "POST requests to /graphql must be `Content-Type: application/json` "
        "(form, multipart and text/plain bodies are refused to prevent cross-site requests)",
        BAD_REQUEST,
    )


def _bearer(entries: Any) -> str | None:
    """The Bearer token of an `authorization` entry (any case) in headers or a payload."""
    if entries is None:
        return None
    for name, value in entries.items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, credentials = value.partition(" ")
            return credentials.strip() if scheme.lower() == "bearer" else None
    return None


# Apollo's header on a persisted-query refusal: the answer changes once the query is sent.
_UNCACHED = {"cache-control": "private, no-cache, must-revalidate"}

# Refusals strawberry raises itself (e.g. 404 for GraphiQL when it is off).
_CODE_OF_STATUS = {404: "NOT_FOUND", 405: "NOT_SUPPORTED"}


def _error_response(status: int, message: str, code: str | None) -> Response:
    body: dict[str, Any] = {
        "errors": [{"message": message, "extensions": {"code": code or BAD_REQUEST}}]
    }
    return JSONResponse(body, status_code=status)


def routes(settings: Settings) -> list[BaseRoute]:
    endpoint = GraphQLEndpoint(build_schema(settings), settings)
    return [
        Route("/graphql", endpoint, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", endpoint),
    ]
