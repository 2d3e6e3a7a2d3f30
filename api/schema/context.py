"""The typed per-request context every resolver receives: who is calling and their loaders.

Over a WebSocket (`graphql-transport-ws`) the context lives as long as the connection; the
subscription resolvers take fresh loaders for every event they deliver, so nothing is answered
from a cache older than the event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from api.domain.errors import Unauthenticated
from api.domain.principal import Principal
from api.schema.loaders import Loaders, UnitOfWorkFactory
from api.services.repositories import UnitOfWork

# Checks the connection's credentials again (expiry, revocation, keys) and returns the caller.
Reauthenticate = Callable[[], Awaitable[Principal]]


@dataclass
class GraphQLContext:
    request: Request | WebSocket
    response: Response | WebSocket
    caller: Principal | None
    unit_of_work_factory: UnitOfWorkFactory = field(repr=False)
    # The `connection_init` payload of a WebSocket connection (strawberry sets it).
    connection_params: dict[str, object] | None = field(default=None, repr=False)
    reauthenticate: Reauthenticate | None = field(default=None, repr=False)

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

    async def renew(self) -> None:
        """Before a subscription delivers an event: the caller's token must still be good, and
        every field of the event reads anew through new loaders."""
        if self.reauthenticate is not None:
            self.caller = await self.reauthenticate()
        self.__dict__.pop("loaders", None)


Info: TypeAlias = strawberry.Info[GraphQLContext, None]
