from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from api.db.migrate import MigrationError, discover, migrate, pending


async def test_concurrent_runs_apply_each_migration_once(empty_database_url: str) -> None:
    # Two replicas starting together: each on its own connection, racing for the lock.
    first, second = await asyncio.gather(
        migrate(empty_database_url), migrate(empty_database_url)
    )

    every_file = [m.name for m in discover()]
    assert sorted(first + second) == every_file
    assert [] in (first, second)
    assert await migrate(empty_database_url) == []
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await pending(conn) == []
    finally:
        await conn.close()


async def test_migrate_accepts_an_open_connection(empty_database_url: str) -> None:
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await pending(conn) == [m.name for m in discover()]
        assert await migrate(conn) == [m.name for m in discover()]
        assert await pending(conn) == []
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(
    empty_database_url: str, tmp_path: Path
) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE first_table (id integer);\n")
    assert await migrate(empty_database_url, tmp_path) == ["0001_first"]

    migration.write_text("CREATE TABLE first_table (id bigint);\n")
    with pytest.raises(MigrationError, match="0001_first.sql changed after it was applied"):
        await migrate(empty_database_url, tmp_path)


async def test_line_endings_alone_are_not_drift(empty_database_url: str, tmp_path: Path) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_bytes(b"CREATE TABLE first_table (id integer);\n")
    await migrate(empty_database_url, tmp_path)

    migration.write_bytes(b"CREATE TABLE first_table (id integer);\r\n")
    assert await migrate(empty_database_url, tmp_path) == []


async def test_a_failing_migration_leaves_no_trace_and_is_retried(
    empty_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first_table (id integer);\n")
    broken = tmp_path / "0002_second.sql"
    broken.write_text("CREATE TABLE second_table (id integer);\nSELECT 1 / 0;\n")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(empty_database_url, tmp_path)

    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await pending(conn, tmp_path) == ["0002_second"]
        # Had the failed run kept second_table, this CREATE TABLE would fail.
        broken.write_text("CREATE TABLE second_table (id integer);\n")
        assert await migrate(conn, tmp_path) == ["0002_second"]
    finally:
        await conn.close()


def test_misnamed_and_duplicate_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake_case.sql"):
        discover(tmp_path)

    (tmp_path / "1_first.sql").unlink()
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0001_other.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="version 0001 is also used"):
        discover(tmp_path)


async def test_versions_unknown_to_this_build_are_tolerated(
    empty_database_url: str, tmp_path: Path
) -> None:
    # A newer replica applied 0002; this older build only knows 0001 and must keep working.
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    newer = tmp_path / "0002_newer.sql"
    newer.write_text("SELECT 2;")
    await migrate(empty_database_url, tmp_path)
    newer.unlink()

    assert await migrate(empty_database_url, tmp_path) == []
