"""`peerbridge db grant-service-role`: give the service's database role exactly its rights."""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from api.cli.common import CONNECTION_ERRORS, CliError, connection_failed, load_settings
from api.cli.migrate import owner_url
from api.db.roles import Grant, RoleRefused, grant_service_role


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "db",
        help="database roles",
        description="Run as the role that owns the tables (--database-url, else "
        "PEERBRIDGE_MIGRATION_DATABASE_URL, else DATABASE_URL).",
    )
    commands = parser.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    grant = commands.add_parser(
        "grant-service-role",
        help="let a role run PeerBridge without owning its tables",
        description="Grant ROLE what `serve` needs and nothing more: read and write the "
        "tables, only read schema_migrations, only INSERT and SELECT audit_events and "
        "audit_checkpoints (no UPDATE, DELETE or TRUNCATE; not being the owner, it cannot "
        "ALTER or disable their triggers). Revokes anything else first; safe to re-run, and "
        "needed after migrations add tables (`migrate` does it when PEERBRIDGE_SERVICE_ROLE "
        "is set). The role must exist (see deploy/roles.sql).",
    )
    grant.add_argument("--role", required=True, help="the role DATABASE_URL logs in as")
    grant.add_argument("--database-url", metavar="URL", help="the owner's URL")
    grant.set_defaults(handler=_grant)


def _grant(args: argparse.Namespace) -> int:
    settings = load_settings()
    with owner_url(settings, args.database_url) as url:
        grants = asyncio.run(_grant_on(url, args.role))
    for grant in grants:
        print(f"{grant.table}: {grant.privileges}")
    print(f"granted {args.role} its rights on {len(grants)} tables")
    return 0


async def _grant_on(url: str, role: str) -> list[Grant]:
    try:
        conn = await asyncpg.connect(url)
    except CONNECTION_ERRORS as error:
        raise connection_failed(error) from None
    try:
        return await grant_service_role(conn, role)
    except RoleRefused as error:
        raise CliError(str(error)) from None
    finally:
        await conn.close()
