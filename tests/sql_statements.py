"""Count the SQL statements a request runs, for the tests that pin them (constant in page size,
as few as the work needs), through either door."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette

_INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")


class StatementCountingPool:
    """Stands in for the app's pool: every connection it hands out logs its statements here."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    def _log(self, record: Any) -> None:
        # asyncpg introspects a type (e.g. uuid[]) the first time a connection meets it: its
        # own statements, run by whichever pooled connection a batch lands on, not the app's.
        if not any(mark in record.query for mark in _INTROSPECTION):
            self.statements.append(record.query)

    async def acquire(self) -> asyncpg.Connection:
        connection = await self._pool.acquire()
        connection.add_query_logger(self._log)
        return connection

    async def release(self, connection: asyncpg.Connection) -> None:
        connection.remove_query_logger(self._log)
        await self._pool.release(connection)


@contextmanager
def counting_statements(app: Starlette) -> Iterator[StatementCountingPool]:
    """While inside, the app's requests run on a pool that logs their statements."""
    real = app.state.pool
    counting = StatementCountingPool(real)
    app.state.pool = counting
    try:
        yield counting
    finally:
        app.state.pool = real
