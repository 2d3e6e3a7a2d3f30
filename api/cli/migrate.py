"""`peerbridge migrate`: apply pending schema migrations (as the owner role) and say which."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from api.cli.common import (
    CONNECTION_ERRORS,
    CliError,
    connection_failed,
    database,
    database_url,
    load_settings,
)
from api.db.migrate import MigrationError, migrate
from api.db.roles import Grant, RoleRefused, grant_service_role
from api.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply the pending SQL migrations in order (safe to run from several "
        "replicas at once). Connects with --database-url, else "
        "PEERBRIDGE_MIGRATION_DATABASE_URL, else DATABASE_URL: the role that owns the tables. "
        "With PEERBRIDGE_SERVICE_ROLE set, it then re-grants that role its rights. `serve` "
        "migrates too when something is pending.",
    )
    parser.add_argument(
        "--database-url", metavar="URL", help="the owner's URL (default: see above)"
    )
    parser.set_defaults(handler=run)


@contextmanager
def owner_url(settings: Settings, override: str | None = None) -> Iterator[str]:
    """The URL migrations run on: the override, PEERBRIDGE_MIGRATION_DATABASE_URL, else the
    database `database()` resolves (DATABASE_URL or the embedded server)."""
    explicit = override or settings.migration_database_url
    if explicit:
        yield explicit
        return
    with database(settings) as resolved:
        yield database_url(resolved)


async def migrate_and_grant(
    url: str, service_role: str | None, *, only_after_changes: bool = False
) -> tuple[list[str], list[Grant]]:
    """Apply what is pending; then, if a service role is configured, grant it its rights
    (with `only_after_changes`, only when a migration was applied: `serve` may be running as
    the service role itself, which has nothing to grant)."""
    try:
        applied = await migrate(url)
        grants: list[Grant] = []
        if service_role and (applied or not only_after_changes):
            conn = await asyncpg.connect(url)
            try:
                grants = await grant_service_role(conn, service_role)
            finally:
                await conn.close()
    except (MigrationError, RoleRefused) as error:
        raise CliError(str(error)) from None
    except CONNECTION_ERRORS as error:
        raise connection_failed(error) from None
    return applied, grants


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    with owner_url(settings, args.database_url) as url:
        applied, grants = asyncio.run(migrate_and_grant(url, settings.service_role))
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    if grants:
        print(f"granted {settings.service_role} its rights on {len(grants)} tables")
    return 0
