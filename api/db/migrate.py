"""Forward-only SQL migrations: `api/db/migrations/NNNN_name.sql`, applied in order.

- Each file runs in its own transaction together with its `schema_migrations` row, so a failed
  file leaves no trace and the next run retries it.
- The whole run holds a PostgreSQL advisory lock: replicas that start together queue up, and the
  first one applies each file once; the others then find nothing to do.
- A file that was applied and later edited is refused (checksum drift): add a new file instead.
- Versions recorded in the database but unknown to this build are tolerated, so an older
  replica keeps running during a rolling deploy.
- When nothing is pending, nothing is written and no lock is taken: a role that may only read
  `schema_migrations` (the production service role) starts without owner rights.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Any constant works as long as every PeerBridge process uses the same one: "PBMIGRAT" in hex.
_ADVISORY_LOCK_KEY = 0x50424D4947524154
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<slug>[a-z0-9_]+)\.sql$")

_log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """The migration files and the database disagree; the message says how to fix it."""


class MigrationNotPermitted(MigrationError):
    """Migrations are pending and this role may not apply them (it does not own the schema)."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str  # the file name without `.sql`, e.g. "0001_core"
    path: Path

    def read(self) -> tuple[str, str]:
        """The SQL text and its checksum (sha256 over the text with normalised line endings)."""
        text = self.path.read_text(encoding="utf-8").replace("\r\n", "\n")
        return text, hashlib.sha256(text.encode("utf-8")).hexdigest()


def discover(directory: Path | None = None) -> list[Migration]:
    """The migration files in version order; refuses misnamed files and duplicate versions."""
    directory = directory or MIGRATIONS_DIR
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(
                f"{path.name}: migration files are named NNNN_lower_snake_case.sql"
            )
        version = int(match["version"])
        if version in migrations:
            other = migrations[version].path.name
            raise MigrationError(f"{path.name}: version {version:04d} is also used by {other}")
        migrations[version] = Migration(version, path.stem, path)
    return [migrations[version] for version in sorted(migrations)]


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


async def _applied(conn: asyncpg.Connection) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of the applied migrations; empty before the first run."""
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    return {row["version"]: (row["name"], row["checksum"]) for row in rows}


async def pending(conn: asyncpg.Connection, directory: Path | None = None) -> list[str]:
    """Names of the migration files not yet applied (readiness: not ready while any remain)."""
    applied = await _applied(conn)
    return [m.name for m in discover(directory) if m.version not in applied]


async def migrate(
    conn_or_dsn: asyncpg.Connection | str, directory: Path | None = None
) -> list[str]:
    """Apply the pending migrations in order; return the names applied by this call."""
    if isinstance(conn_or_dsn, str):
        # Migrations may run longer than a request may: no statement_timeout on this session.
        conn = await asyncpg.connect(
            conn_or_dsn, server_settings={"application_name": "peerbridge-migrate"}
        )
        try:
            return await _migrate_locked(conn, directory)
        finally:
            await conn.close()
    return await _migrate_locked(conn_or_dsn, directory)


async def _migrate_locked(conn: asyncpg.Connection, directory: Path | None) -> list[str]:
    migrations = discover(directory)
    if await _all_applied(conn, migrations):
        return []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _ADVISORY_LOCK_KEY)
        return await _apply(conn, migrations)
    except asyncpg.InsufficientPrivilegeError:
        raise MigrationNotPermitted(
            "migrations are pending and this database role may not apply them: run "
            "`peerbridge migrate` with the owner's URL (--database-url or "
            "PEERBRIDGE_MIGRATION_DATABASE_URL)"
        ) from None
    finally:
        if not conn.is_closed():
            await conn.execute("SELECT pg_advisory_unlock($1)", _ADVISORY_LOCK_KEY)


async def _all_applied(conn: asyncpg.Connection, migrations: list[Migration]) -> bool:
    """True (after the drift checks) when every file is applied: read-only, no lock."""
    applied = await _applied(conn)
    if any(migration.version not in applied for migration in migrations):
        return False
    _check_unknown_versions(applied, migrations)
    for migration in migrations:
        _check_unchanged(migration, migration.read()[1], applied[migration.version][1])
    return True


async def _apply(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute(_CREATE_TABLE)
    applied = await _applied(conn)
    _check_unknown_versions(applied, migrations)
    done: list[str] = []
    for migration in migrations:
        sql, checksum = migration.read()
        if migration.version in applied:
            _check_unchanged(migration, checksum, applied[migration.version][1])
            continue
        async with conn.transaction():
            # A pool connection carries the request statement_timeout; migrations may not.
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                checksum,
            )
        _log.info("applied migration %s", migration.name)
        done.append(migration.name)
    return done


def _check_unchanged(migration: Migration, checksum: str, applied_checksum: str) -> None:
    if checksum != applied_checksum:
        raise MigrationError(
            f"{migration.path.name} changed after it was applied to this database "
            "(checksum differs). Applied migrations are immutable: restore the file and put "
            "the change in a new migration."
        )


def _check_unknown_versions(applied: dict[int, tuple[str, str]], known: list[Migration]) -> None:
    known_versions = {m.version for m in known}
    unknown = sorted(
        name for version, (name, _) in applied.items() if version not in known_versions
    )
    if unknown:
        _log.warning(
            "database has migrations this build does not know (a newer build?): %s",
            ", ".join(unknown),
        )
