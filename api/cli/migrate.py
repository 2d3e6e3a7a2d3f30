"""`peerbridge migrate`: apply pending schema migrations and say which."""

from __future__ import annotations

import argparse
import asyncio

from api.cli.common import (
    CONNECTION_ERRORS,
    CliError,
    connection_failed,
    database,
    database_url,
    load_settings,
)
from api.db.migrate import MigrationError, migrate


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="apply pending database migrations",
        description="Apply the pending SQL migrations in order (safe to run from several "
        "replicas at once). `serve` does this too before it starts.",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    with database(settings) as settings:
        try:
            applied = asyncio.run(migrate(database_url(settings)))
        except MigrationError as error:
            raise CliError(str(error)) from None
        except CONNECTION_ERRORS as error:
            raise connection_failed(error) from None
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    return 0
