"""The typed per-request context every resolver receives: who is calling and their loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from api.domain.errors import Unauthenticated
from api.domain.principal import Principal
from api.schema.loaders import Loaders, UnitOfWorkFactory
from api.services.repositories import UnitOfWork


@dataclass
class GraphQLContext:
    request: Request
    response: Response
    caller: Principal | None
    unit_of_work_factory: UnitOfWorkFactory = field(repr=False)

    @property
    def principal(self) -> Principal:
        """The authenticated caller; resolvers only run for one (see `AuthenticationGate`)."""
        if self.caller is None:
            raise Unauthenticated("a bearer access token is required")
        return self.caller

    @cached_property
    def loaders(self) -> Loaders:
        return Loaders.for_request(self.unit_of_work_factory, self.principal)

    def unit_of_work(self) -> UnitOfWork:
        """A fresh unit of work for one service call (each call owns its transaction)."""
        return self.unit_of_work_factory()


Info: TypeAlias = strawberry.Info[GraphQLContext, None]
