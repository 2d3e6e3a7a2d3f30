"""The asyncpg connection pool, with every timeout set explicitly.

asyncpg's defaults wait forever: `Pool.acquire(timeout=None)` blocks until a connection frees
up and `command_timeout=None` never gives up on a query. The pool built here
- applies `db_acquire_timeout_s` to every `acquire()` that does not pass its own timeout
  (callers just write `async with pool.acquire() as conn:`); a starved pool fails instead of
  queueing requests without bound;
- says `Unavailable` (the domain's 503, with a retry delay) for every failure that means
  "the database cannot serve right now": no free connection within the acquire timeout, a
  refused or lost connection, a server shutting down or starting up (`api.db.errors`), in
  `acquire()` and in the body of `async with pool.acquire()`, so every door answers 503
  with `Retry-After` instead of a 500;
- sets `command_timeout` (client side) and `statement_timeout` (server side, so PostgreSQL
  cancels the statement and frees its locks first);
- decodes json/jsonb columns to Python objects (orjson where it can) and encodes parameters
  with `json.dumps`;
- returns a connection to the pool without asyncpg's reset statement (`_keep_session`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Generator
from types import TracebackType
from typing import Any, NoReturn

import asyncpg

from api import wire_json
from api.db.errors import unavailable
from api.db.migrate import pending
from api.domain.errors import Unavailable
from api.observability.metrics import DB_ACQUIRES_WAITING, DB_CONNECTIONS_IN_USE
from api.settings import Settings

_log = logging.getLogger(__name__)


class DatabaseNotConfigured(RuntimeError):
    """The settings hold no database URL (the CLI resolves the embedded one before this)."""


class _AcquireTimeoutPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no type stubs
    """An `asyncpg.Pool` whose `acquire()` defaults to a finite timeout."""

    __slots__ = ("_default_acquire_timeout",)

    def __init__(self, *args: Any, default_acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._default_acquire_timeout = default_acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return _Acquisition(
            super().acquire(timeout=self._default_acquire_timeout if timeout is None else timeout)
        )

    async def release(self, connection: Any, *, timeout: float | None = None) -> None:
        """Give a connection back; never fails the request that used it. When asyncpg cannot
        reset a connection (lost, or left mid-exchange by a server shutdown) it closes it and
        re-raises, but the request's own work is done by then (committed or rolled back):
        the pool opens a new connection on a later acquire."""
        DB_CONNECTIONS_IN_USE.dec()
        try:
            await super().release(connection, timeout=timeout)
        except Exception as error:  # noqa: BLE001 - asyncpg has closed the connection
            _log.warning("closed a database connection that could not be reset (%s)",
                         type(error).__name__)


def _raise_translated(error: Exception) -> NoReturn:
    translated = unavailable(error)
    if translated is None:
        raise error
    raise translated from error


class _Acquisition:
    """asyncpg's acquire context (awaitable, or `async with`) with outages as `Unavailable`."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __await__(self) -> Generator[Any, None, Any]:
        return self._acquire().__await__()

    async def _acquire(self) -> Any:
        DB_ACQUIRES_WAITING.inc()
        try:
            connection = await self._inner
        except Exception as error:
            _raise_translated(error)
        finally:
            DB_ACQUIRES_WAITING.dec()
        DB_CONNECTIONS_IN_USE.inc()
        return connection

    async def __aenter__(self) -> Any:
        DB_ACQUIRES_WAITING.inc()
        try:
            connection = await self._inner.__aenter__()
        except Exception as error:
            _raise_translated(error)
        finally:
            DB_ACQUIRES_WAITING.dec()
        DB_CONNECTIONS_IN_USE.inc()
        return connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, traceback)  # releases: never raises
        if exc is not None:
            translated = unavailable(exc)
            if translated is not None:
                raise translated from exc


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, schema="pg_catalog", encoder=json.dumps, decoder=wire_json.loads
        )


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a released connection needs beyond asyncpg's own clean-up: nothing.

    asyncpg always rolls back an open transaction and drops listener callbacks on release;
    its default reset adds one statement per release (RESET ALL, CLOSE ALL, UNLISTEN *,
    advisory unlock) - a round trip on every request for session state PeerBridge never
    leaves on a pooled connection: settings are set at connect time or `SET LOCAL`, advisory
    locks are transaction-scoped, LISTEN runs on connections of its own
    (tests/integration/test_pool_reset.py holds this).
    """


def server_settings(settings: Settings) -> dict[str, str]:
    """Session settings every PeerBridge connection starts with."""
    return {
        "application_name": "peerbridge",
        "statement_timeout": str(settings.db_statement_timeout_ms),
    }


async def create_pool(settings: Settings, dsn: str | None = None) -> asyncpg.Pool:
    """Open a pool on `dsn` (default: `settings.database_url`), sized and timed by the settings."""
    dsn = dsn or settings.database_url
    if not dsn:
        raise DatabaseNotConfigured("no database URL: set DATABASE_URL")
    pool = _AcquireTimeoutPool(
        dsn,
        # The same defaults `asyncpg.create_pool` passes; the Pool constructor has no defaults.
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=settings.db_command_timeout_s,
        server_settings=server_settings(settings),
        default_acquire_timeout=settings.db_acquire_timeout_s,
    )
    await pool
    return pool


async def connect(
    settings: Settings, *, application_name: str, dsn: str | None = None
) -> asyncpg.Connection:
    """One connection outside the pool, set up like the pool's (for a long-lived listener,
    which must neither take a pooled connection for good nor hold up the pool's close)."""
    dsn = dsn or settings.database_url
    if not dsn:
        raise DatabaseNotConfigured("no database URL: set DATABASE_URL")
    connection = await asyncpg.connect(
        dsn,
        timeout=settings.db_acquire_timeout_s,
        command_timeout=settings.db_command_timeout_s,
        server_settings={**server_settings(settings), "application_name": application_name},
    )
    await _init_connection(connection)
    return connection


async def readiness_problem(pool: asyncpg.Pool, timeout: float) -> str | None:
    """Why this process cannot serve traffic yet, or None when the database answers and the
    schema is current. The reason is a fixed phrase or migration names: never error detail."""
    try:
        async with pool.acquire(timeout=timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)
            not_applied = await pending(conn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, Unavailable) as error:
        _log.warning("readiness: database unavailable (%s)", type(error).__name__)
        return "database unavailable"
    if not_applied:
        return "migrations pending: " + ", ".join(not_applied)
    return None
