"""Schema extensions: the authentication gate, ftv1 tracing on demand, and the limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.utilities import get_operation_ast
from graphql.validation import ASTValidationRule
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.tracing.apollo_federation import (
    ApolloFederationTracingExtension,
    _SimpleError,
)
from strawberry.types.graphql import OperationType

from api.domain.errors import DomainError, Invalid, Unauthenticated
from api.schema.context import GraphQLContext
from api.schema.errors import MASKED_MESSAGE
from api.schema.literals import StorableStringLiterals
from api.settings import Settings

# Root fields that hold no data: a gateway composes from `_service { sdl }` without a token.
_PUBLIC_ROOT_FIELDS = frozenset({"_service", "__typename"})
_CACHE_SIZE = 1000


class AuthenticationGate(SchemaExtension):
    """Refuse, before anything resolves, an operation without a Principal that asks for more
    than the public root fields: one UNAUTHENTICATED error, HTTP 401, no partial data."""

    def __init__(self, *, sdl_requires_token: bool = False) -> None:
        self.public_fields = frozenset() if sdl_requires_token else _PUBLIC_ROOT_FIELDS

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, GraphQLContext) and context.caller is None:
            fields = _root_fields(self.execution_context)
            if not fields <= self.public_fields:
                error = Unauthenticated("a bearer access token is required")
                self.execution_context.result = ExecutionResult(
                    data=None, errors=[GraphQLError(error.message, original_error=error)]
                )
                if isinstance(context.response, Response):
                    context.response.status_code = 401
                    context.response.headers["www-authenticate"] = 'Bearer realm="peerbridge"'
        yield


class SubscriptionsOnWebSocketsOnly(SchemaExtension):
    """Subscriptions run over a WebSocket, and only they do. A socket's context (its caller and
    loaders) outlives any one operation: only the subscription resolvers renew it per event, so
    queries and mutations belong on POST, where every request authenticates afresh."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        # An operation the authentication gate already answered keeps that answer.
        if isinstance(context, GraphQLContext) and self.execution_context.result is None:
            on_socket = isinstance(context.request, WebSocket)
            subscription = self.execution_context.operation_type is OperationType.SUBSCRIPTION
            if on_socket and not subscription:
                raise Invalid("over a WebSocket only subscriptions run: POST queries and mutations")
            if subscription and not on_socket:
                raise Invalid("subscriptions run over a WebSocket (graphql-transport-ws)")
        yield


class OperationLabel(SchemaExtension):
    """Names the operation by what it asks of the schema, its type and root field
    (`query referrals`, `several` for more than one), for the request metrics and as the
    operation's trace span. Only validated documents get here, so every name is the schema's
    own: never the client's operation name, document or variables (free text, PHI)."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        if not (isinstance(context, GraphQLContext) and isinstance(context.request, Request)):
            yield
            return
        fields = _root_fields(self.execution_context)
        (only,) = fields if len(fields) == 1 else ("several",)
        label = f"{self.execution_context.operation_type.value} {only}"
        context.request.state.metrics_operation = label
        provider = getattr(context.request.app.state, "tracer_provider", None)
        if provider is None:
            yield
            return
        with provider.get_tracer("peerbridge.graphql").start_as_current_span(label):
            yield


def _root_fields(execution_context: Any) -> frozenset[str]:
    document = execution_context.graphql_document
    operation = get_operation_ast(document, execution_context.operation_name)
    if operation is None:
        return frozenset({"?"})
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    _collect(operation.selection_set, fragments, names, set())
    return frozenset(names)


def _collect(
    selections: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    names: set[str],
    seen: set[str],
) -> None:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            names.add(selection.name.value)
        elif isinstance(selection, InlineFragmentNode):
            _collect(selection.selection_set, fragments, names, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                _collect(fragment.selection_set, fragments, names, seen)


class FederationTracing(ApolloFederationTracingExtension):
    """ftv1 inline traces, only when the gateway asks (`apollo-federation-include-trace`).

    The stock extension wraps every resolver, which makes every field a coroutine even when
    nobody traces; this one joins the resolver chain only for traced requests. Error texts in
    the trace are masked the same way as in the response.
    """

    def _implements_resolve(self) -> bool:  # type: ignore[override]
        return self._check_should_trace()

    def _make_error(self, e: Exception, info: Any) -> _SimpleError:
        if not isinstance(e, DomainError):
            e = Exception(MASKED_MESSAGE)
        return super()._make_error(e, info)


def _validation_rules(settings: Settings) -> list[type[ASTValidationRule]]:
    """The limits' rule classes, made once per schema: `ValidationCache` keys on these classes,
    and the stock extensions would make new ones per request (a cache miss every time)."""
    rules: list[type[ASTValidationRule]] = [
        StorableStringLiterals,
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    if not settings.graphql_introspection_enabled:
        rules += DisableIntrospection().validation_rules
    return rules


def schema_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Limits first (they refuse before work is done), then caches, the gate and tracing."""
    rules = _validation_rules(settings)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=_CACHE_SIZE),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=_CACHE_SIZE),
        lambda: AuthenticationGate(sdl_requires_token=settings.graphql_sdl_requires_token),
        SubscriptionsOnWebSocketsOnly,
        OperationLabel,
        FederationTracing,
    ]
