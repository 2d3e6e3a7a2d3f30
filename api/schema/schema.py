"""The federated schema: Query, Mutation, Subscription, entities, limits, error logging
without PHI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import strawberry
from graphql import GraphQLError
from strawberry.federation.schema import FederationAny
from strawberry.printer import print_schema
from strawberry.schema.config import StrawberryConfig

from api.schema import (
    enums,  # noqa: F401  (registers the domain enums before the types load)
    instants,
)
from api.schema.direct_resolvers import call_directly
from api.schema.entities import resolve_checked
from api.schema.errors import log_errors
from api.schema.extensions import schema_extensions
from api.schema.mutation import Mutation
from api.schema.query import Query
from api.schema.subscription import Subscription
from api.settings import Settings

# 2.10+ is refused by The Guild's composer.
FEDERATION_VERSION: Literal["2.9"] = "2.9"


class PeerBridgeSchema(strawberry.federation.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: Any | None = None
    ) -> None:
        # The stock hook logs each error with its message and traceback (PHI risk).
        log_errors(errors)

    def entities_resolver(
        self, info: strawberry.Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Each representation checked first; the stock resolver raises on an unknown
        `__typename` (failing all of them) and masks a missing `id` as an internal error."""
        return resolve_checked(
            representations,
            self._entity_type_names(),
            lambda sound: super(PeerBridgeSchema, self).entities_resolver(info, sound),
        )

    def _entity_type_names(self) -> frozenset[str]:
        return frozenset(
            name
            for name, type_ in self.schema_converter.type_map.items()
            if hasattr(getattr(type_.definition, "origin", None), "resolve_reference")
        )


def build_schema(settings: Settings) -> PeerBridgeSchema:
    schema = PeerBridgeSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=schema_extensions(settings),
        config=StrawberryConfig(
            disable_field_suggestions=True, scalar_map={datetime: instants.DATETIME}
        ),
        federation_version=FEDERATION_VERSION,
    )
    call_directly(schema._schema, schema.config.info_class)
    return schema


def print_sdl(settings: Settings | None = None) -> str:
    """The subgraph SDL, exactly as `_service { sdl }` serves it."""
    return print_schema(build_schema(settings or Settings()))
