"""The audit trail partitioned by month (0013): rows land in their month, a month without a
partition never refuses a row, the service role can create the coming months and nothing
more, and the trail's protections hold on every partition."""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from roles_support import service_role

from api.app import create_app
from api.db.audit_evidence import PostgresAuditEvidence
from api.db.audit_partitions import create_ahead, list_partitions
from api.db.migrate import MIGRATIONS_DIR, migrate
from api.domain.audit_evidence import row_hash
from api.settings import Settings

ORG = UUID("00000000-0000-4000-8000-0000000000aa")
INSERT_ROW = (
    "INSERT INTO audit_events (action, outcome, operation, resource_type, client_id, "
    "organization_id, subject) VALUES ('R', 'success', 'op', 'Patient', 'c', $1, 's')"
)


def _month(offset: int) -> datetime:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 + offset
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _name(month: datetime) -> str:
    return f"audit_events_{month:%Y_%m}"


async def _where(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT tableoid::regclass::text AS p FROM audit_events ORDER BY 1")
    return [row["p"] for row in rows]


async def test_migrate_creates_this_month_and_two_ahead_and_rows_land_in_their_month(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        partitions = await list_partitions(conn)
        await conn.execute(INSERT_ROW, ORG)
        # A writer's back-dated time is replaced by the database's, in the month it belongs to.
        await conn.execute(
            "INSERT INTO audit_events (action, outcome, operation, resource_type, client_id, "
            "organization_id, subject, recorded_at) VALUES "
            "('R', 'success', 'op', 'Patient', 'c', $1, 's', '2001-01-01T00:00:00Z')",
            ORG,
        )
        assert await _where(conn) == [_name(_month(0))] * 2
    assert [p.name for p in partitions] == [
        _name(_month(0)), _name(_month(1)), _name(_month(2)), "audit_events_default"
    ]
    assert partitions[-1].since is None and partitions[-1].until is None
    this_month = next(p for p in partitions if p.name == _name(_month(0)))
    assert (this_month.since, this_month.until) == (_month(0), _month(1))


async def test_a_month_without_a_partition_keeps_its_rows_in_the_default_one(
    pool: asyncpg.Pool,
) -> None:
    current = _name(_month(0))
    async with pool.acquire() as conn:
        await conn.execute(f"ALTER TABLE audit_events DETACH PARTITION {current}")
        await conn.execute(f"DROP TABLE {current}")
        await conn.execute(INSERT_ROW, ORG)
        assert await _where(conn) == ["audit_events_default"]
        # Its month cannot be carved out of the DEFAULT partition now: skipped, the rows stay
        # readable where they are, and the months after it are still created.
        assert _name(_month(3)) in await create_ahead(conn, 3)
        assert current not in {p.name for p in await list_partitions(conn)}
        await conn.execute(INSERT_ROW, ORG)
        assert await _where(conn) == ["audit_events_default"] * 2


async def test_every_partition_refuses_truncate_update_and_delete(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute(INSERT_ROW, ORG)
        current = _name(_month(0))  # holds the row: row triggers fire only on rows
        for statement in [
            *(f"TRUNCATE {p}" for p in (current, _name(_month(1)), "audit_events_default")),
            f"DELETE FROM {current}",
            f"UPDATE {current} SET subject = 'x'",
        ]:
            with pytest.raises(asyncpg.RaiseError, match="is append-only"):
                await conn.execute(statement)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 1


async def test_the_service_role_creates_the_coming_months_and_cannot_touch_a_partition(
    database_url: str,
) -> None:
    async with service_role(database_url) as role:
        conn = await asyncpg.connect(role.url)
        try:
            assert await create_ahead(conn, 5) == [_name(_month(i)) for i in (3, 4, 5)]
            assert await create_ahead(conn, 5) == []  # idempotent
            await conn.execute(INSERT_ROW, ORG)
            for statement in (
                f"SELECT count(*) FROM {_name(_month(0))}",
                f"INSERT INTO {_name(_month(0))} SELECT * FROM audit_events",
                f"ALTER TABLE audit_events DETACH PARTITION {_name(_month(1))}",
                f"DROP TABLE {_name(_month(4))}",
                "SELECT audit_events_add_partition('2001-01-01T00:00:00Z')",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
        finally:
            await conn.close()


async def test_rows_written_before_0013_keep_their_id_time_and_hash(
    empty_database_url: str, tmp_path: Path
) -> None:
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0013":
            shutil.copy(path, tmp_path / path.name)
    await migrate(empty_database_url, tmp_path)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute(INSERT_ROW, ORG)
        await conn.execute(INSERT_ROW, ORG)
        before = await conn.fetch("SELECT id, recorded_at, xid, row_hash FROM audit_events")
        await migrate(empty_database_url)
        after = await conn.fetch("SELECT id, recorded_at, xid, row_hash FROM audit_events")
        rows = await PostgresAuditEvidence(conn).rows(0, None, None, 100)
    finally:
        await conn.close()
    assert sorted(map(tuple, before)) == sorted(map(tuple, after))
    assert len(rows) == 2 and all(row.row_hash == row_hash(row.event, row.xid) for row in rows)


async def test_serve_keeps_the_configured_months_ahead(settings: Settings) -> None:
    application = create_app(settings.model_copy(update={"audit_partition_months_ahead": 5}))
    async with LifespanManager(application):
        pool: asyncpg.Pool = application.state.pool
        deadline = time.monotonic() + 30
        while True:
            async with pool.acquire() as conn:
                names = {p.name for p in await list_partitions(conn)}
            if _name(_month(5)) in names:
                break
            assert time.monotonic() < deadline, "serve never created the months ahead"
            await asyncio.sleep(0.05)
