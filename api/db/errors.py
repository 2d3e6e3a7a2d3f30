"""Translate asyncpg errors into domain errors. Their `.detail` echoes data values (PHI, keys):
it never leaves this module."""

from __future__ import annotations

import asyncpg

from api.domain.errors import Conflict, DomainError, Invalid, Unavailable


def translate(error: asyncpg.PostgresError) -> DomainError | None:
    """The domain error a constraint violation means, or None for a genuine fault."""
    if isinstance(error, asyncpg.UniqueViolationError):
        return Conflict("a record with the same unique fields already exists")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return Invalid("refers to a record that does not exist")
    if isinstance(error, asyncpg.CheckViolationError):
        return Invalid("a value is outside what the record allows")
    if isinstance(error, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return Conflict("a concurrent change collided with this one; retry")
    return None


# Seconds a client is told to wait (`Retry-After`) when the database is unreachable or the
# pool has no free connection: a restart or failover takes a few seconds, and the pool
# reconnects on the next request once the server answers again.
RETRY_AFTER_S = 2

# Network failures; SQLSTATE classes 08 (connection exception) and 53 (insufficient
# resources: too many connections, out of memory or disk); class 57's shutdown and startup.
_UNAVAILABLE_ERRORS = (
    OSError,  # refused, reset, no socket; TimeoutError (acquire timeout) is an OSError
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    # The connection's protocol state is broken (a server shutdown message raced a query,
    # a desync) or the server is not the primary asked for: a new connection is needed.
    asyncpg.InternalClientError,
)


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot serve right now (not that the request is
    wrong): refused or lost connections, server shutdown or startup, no free connection in
    the pool within the acquire timeout (TimeoutError), a connection already closed."""
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return True
    # asyncpg says "connection is closed" (an InterfaceError) when a connection lost earlier
    # is used again, e.g. to roll back after the loss; its other InterfaceErrors are misuse.
    return isinstance(error, asyncpg.InterfaceError) and "connection is closed" in str(error)


def unavailable(error: BaseException) -> Unavailable | None:
    """The `Unavailable` refusal for a database outage or a starved pool, else None."""
    if not is_unavailable(error):
        return None
    if isinstance(error, TimeoutError):
        return Unavailable("the service is busy; retry shortly", retry_after_s=RETRY_AFTER_S)
    return Unavailable(
        "the database is unavailable; retry shortly", retry_after_s=RETRY_AFTER_S
    )
