"""The asyncpg connection pool, with every timeout set explicitly.

asyncpg's defaults wait forever: `Pool.acquire(timeout=None)` blocks until a connection frees
up and `command_timeout=None` never gives up on a query. The pool built here
- applies `db_acquire_timeout_s` to every `acquire()` that does not pass its own timeout
  (callers just write `async with pool.acquire() as conn:`); a starved pool raises
  `TimeoutError` instead of queueing requests without bound;
- sets `command_timeout` (client side) and `statement_timeout` (server side, so PostgreSQL
  cancels the statement and frees its locks first);
- decodes json/jsonb columns to Python objects and encodes parameters with `json.dumps`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg

from api.db.migrate import pending
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
        return super().acquire(
            timeout=self._default_acquire_timeout if timeout is None else timeout
        )


async def _init_connection(connection: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, schema="pg_catalog", encoder=json.dumps, decoder=json.loads
        )


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
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        _log.warning("readiness: database unavailable (%s)", type(error).__name__)
        return "database unavailable"
    if not_applied:
        return "migrations pending: " + ", ".join(not_applied)
    return None
