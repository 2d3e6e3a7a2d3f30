"""Resolvers without arguments, called directly.

strawberry calls every field resolver through a generic wrapper: it builds an `Info`, converts
the (absent) arguments, runs the (absent) field extensions and awaits what may be awaitable -
about a fifth of the CPU of an inbox page of 50, where `patient`, `program`, `givenName` and
`familyName` resolve once per node (`python -m benchmarks profile "GraphQL inbox"`). For a
synchronous resolver that takes no GraphQL arguments and has no field extensions, the wrapper
does nothing but call it: here each such field's graphql-core resolver becomes that call,
with the same `Info` when the resolver asks for one. Schema extensions that wrap resolvers
(graphql-core middleware, e.g. federated tracing) still wrap these; errors surface as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

_DEFINITION = "strawberry-definition"


def call_directly(schema: GraphQLSchema, info_class: Callable[..., Info[Any, Any]]) -> int:
    """Replace the resolvers this module may call directly; how many it replaced."""
    replaced = 0
    for graphql_type in schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        for graphql_field in graphql_type.fields.values():
            field = (graphql_field.extensions or {}).get(_DEFINITION)
            resolve = _direct(field, info_class) if isinstance(field, StrawberryField) else None
            if resolve is not None:
                graphql_field.resolve = resolve
                replaced += 1
    return replaced


def _direct(
    field: StrawberryField, info_class: Callable[..., Info[Any, Any]]
) -> Callable[..., Any] | None:
    resolver = field.base_resolver
    if (
        resolver is None
        or field.extensions
        or field.arguments
        or resolver.is_async
        or resolver.self_parameter is None
        or resolver.root_parameter is not None
        or resolver.parent_parameter is not None
        or inspect.isasyncgenfunction(resolver.wrapped_func)
    ):
        return None
    # strawberry types it loosely; with a `self` parameter it is a plain function.
    function = cast(Callable[..., Any], resolver.wrapped_func)
    info_parameter = resolver.info_parameter
    if info_parameter is None:

        def resolve(source: Any, _info: Any) -> Any:
            return function(source)

        return resolve
    name = info_parameter.name

    def resolve_with_info(source: Any, info: Any) -> Any:
        return function(source, **{name: info_class(_raw_info=info, _field=field)})

    return resolve_with_info
