"""`/graphql` on Starlette: context per request, CSRF refusal, errors in their wire form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from api.db.uow import PostgresUnitOfWork
from api.schema.context import GraphQLContext
from api.schema.errors import format_error
from api.schema.schema import PeerBridgeSchema, build_schema
from api.services.repositories import UnitOfWork
from api.settings import Settings

# Form, multipart and text/plain POSTs are "simple" requests a browser sends cross-site without
# a CORS preflight; refusing them (as Apollo Router does) closes the CSRF door.
_ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/graphql-response+json"})

UnitOfWorkFor = Callable[[Request], Callable[[], UnitOfWork]]


def _postgres_unit_of_work(request: Request) -> Callable[[], UnitOfWork]:
    pool = request.app.state.pool
    return lambda: PostgresUnitOfWork(pool)


class GraphQLEndpoint(GraphQL[GraphQLContext, None]):
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
        )
        self._unit_of_work_for = unit_of_work_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await WebSocket(scope, receive, send).close(code=1003)
            return
        request = Request(scope, receive)
        response = _csrf_refusal(request)
        if response is None:
            try:
                response = await self.run(request)
            except HTTPException as error:
                response = _error_response(error.status_code, error.reason, "BAD_REQUEST")
        await response(scope, receive, send)

    async def get_context(  # type: ignore[override]
        self, request: Request, response: Response
    ) -> GraphQLContext:
        return GraphQLContext(
            request=request,
            response=response,
            caller=getattr(request.state, "principal", None),
            unit_of_work_factory=self._unit_of_work_for(request),
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            response["errors"] = [format_error(error) for error in result.errors]
        if result.extensions:
            response["extensions"] = result.extensions
        return response


def _csrf_refusal(request: Request) -> Response | None:
    if request.method != "POST":
        return None
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type in _ACCEPTED_CONTENT_TYPES:
        return None
    return _error_response(
        415,
        "POST requests to /graphql must be `Content-Type: application/json` "
        "(form, multipart and text/plain bodies are refused to prevent cross-site requests)",
        "BAD_REQUEST",
    )


def _error_response(status: int, message: str, code: str) -> Response:
    body: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status)


def routes(settings: Settings) -> list[BaseRoute]:
    endpoint = GraphQLEndpoint(build_schema(settings), settings)
    return [Route("/graphql", endpoint, methods=["GET", "POST"])]
