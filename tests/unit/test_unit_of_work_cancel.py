"""A unit of work cancelled mid-statement stays cancelled, whatever the rollback runs into.

Background tasks (the event schedule, housekeeping) stop with `task.cancel()`. When the
cancellation interrupts a statement, the connection is half-way through an exchange and its
rollback fails; if that failure replaced the CancelledError, the task would log it, sleep and
carry on, and the app's shutdown would wait out its interval.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from api.db.uow import PostgresUnitOfWork


class _MidExchange:
    """A transaction on a connection whose last statement was cancelled half-way."""

    async def start(self) -> None:
        return None

    async def rollback(self) -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")


class _Connection:
    def __init__(self) -> None:
        self.terminated = False

    def transaction(self) -> _MidExchange:
        return _MidExchange()

    def terminate(self) -> None:
        self.terminated = True


class _Pool:
    def __init__(self) -> None:
        self.connection = _Connection()
        self.released: list[Any] = []

    async def acquire(self) -> _Connection:
        return self.connection

    async def release(self, connection: _Connection) -> None:
        self.released.append(connection)


async def test_the_cancellation_survives_a_failed_rollback() -> None:
    pool = _Pool()
    with pytest.raises(asyncio.CancelledError):
        async with PostgresUnitOfWork(pool):  # type: ignore[arg-type]
            raise asyncio.CancelledError
    # Not fit to reset and reuse: closed, then handed back so the pool opens a new one.
    assert pool.connection.terminated
    assert pool.released == [pool.connection]


async def test_a_failed_rollback_after_an_ordinary_error_is_still_said() -> None:
    pool = _Pool()
    with pytest.raises(asyncpg.InterfaceError):
        async with PostgresUnitOfWork(pool):  # type: ignore[arg-type]
            raise ValueError("the use case failed")
    assert pool.released == [pool.connection]
