"""Which resolvers the schema calls directly (api/schema/direct_resolvers.py): synchronous ones
without GraphQL arguments or field extensions; every other keeps strawberry's wrapper."""

from __future__ import annotations

from graphql import GraphQLObjectType

from api.schema.schema import build_schema
from api.settings import Settings


def _is_direct(type_name: str, field_name: str) -> bool:
    schema = build_schema(Settings())._schema
    graphql_type = schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    resolve = graphql_type.fields[field_name].resolve
    return getattr(resolve, "__module__", "") == "api.schema.direct_resolvers"


def test_the_inbox_relations_and_withheld_fields_are_called_directly() -> None:
    for type_name, field_name in [
        ("Referral", "patient"),
        ("Referral", "program"),
        ("Patient", "givenName"),
        ("Patient", "familyName"),
    ]:
        assert _is_direct(type_name, field_name), (type_name, field_name)


def test_resolvers_with_arguments_async_ones_and_plain_attributes_keep_strawberrys_path() -> None:
    assert not _is_direct("Query", "referrals")  # arguments
    assert not _is_direct("Referral", "history")  # async
    assert not _is_direct("Referral", "status")  # an attribute: strawberry's own fast path
