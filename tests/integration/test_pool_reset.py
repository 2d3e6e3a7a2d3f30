"""The pool gives connections back without asyncpg's reset statement (api/db/pool.py), which is
safe only while nothing leaves session state on a pooled connection: these tests hold both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import asyncpg

from api.db.uow import PostgresUnitOfWork

API = Path(__file__).resolve().parents[2] / "api"


async def _statements_of_release(pool: asyncpg.Pool, *, in_transaction: bool) -> list[str]:
    seen: list[str] = []

    def note(record: Any) -> None:
        seen.append(record.query)

    connection = await pool.acquire()
    if in_transaction:
        await connection.execute("BEGIN")
    connection.add_query_logger(note)  # stays with the test pool's connection: harmless
    await pool.release(connection)
    return seen


async def test_a_released_connection_runs_no_reset_statement(pool: asyncpg.Pool) -> None:
    assert await _statements_of_release(pool, in_transaction=False) == []


async def test_a_transaction_left_open_is_still_rolled_back_on_release(pool: asyncpg.Pool) -> None:
    assert await _statements_of_release(pool, in_transaction=True) == ["ROLLBACK"]
    async with pool.acquire() as connection:
        assert not connection.is_in_transaction()


async def test_a_read_in_autocommit_leaves_the_connection_idle(pool: asyncpg.Pool) -> None:
    uow = PostgresUnitOfWork(pool)
    async with uow.autocommit():
        assert await uow.organizations.get_many([]) == []
        await uow.commit()
    async with uow:  # the next entry is a transaction again
        in_transaction = uow._connection.is_in_transaction()  # noqa: SLF001
    assert in_transaction
    async with pool.acquire() as connection:
        assert not connection.is_in_transaction()


# Session state that would outlive a request on a pooled connection, were it ever written.
# A SET statement opens a SQL string (`"SET ...`) or follows a `;`; UPDATE's SET does neither.
_SESSION_STATE = re.compile(
    r"""(["']|;\s*)SET\s+(?!LOCAL\b)"""
    r"|\bpg_advisory_lock(_shared)?\s*\("
    r"|\bCREATE\s+TEMP(ORARY)?\s+TABLE\b"
    r"|\bWITH\s+HOLD\b"
    r"|\bset_config\s*\([^)]*,\s*false\s*\)"
    r"""|(["']|;\s*)LISTEN\b"""
)


def test_no_sql_in_api_leaves_session_state_except_the_migration_lock() -> None:
    found = set()
    for path in API.rglob("*.py"):
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            # An UPDATE's SET clause may open the next string of the same statement.
            if _SESSION_STATE.search(line) and "UPDATE" not in " ".join(lines[number - 2 : number]):
                found.add(f"{path.relative_to(API)}:{number}")
    # The migration run's lock: on a connection of its own, unlocked in its `finally`.
    assert {site.split(":")[0] for site in found} <= {"db/migrate.py"}, sorted(found)
