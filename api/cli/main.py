"""`peerbridge`: the operator's command line. Entry point: `main()`.

Command groups plug in through `_COMMANDS`: a module with `register(subparsers)` that adds
its parser(s) and sets `handler=<function(args) -> exit code>` on each.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import asyncpg

from api.cli.common import CliError
from api.domain.errors import DomainError

# Command name -> the module that registers it. Only the module of the command being run is
# imported (`peerbridge orgs list` need not build the GraphQL schema, and `serve` imports the
# app while the embedded database starts); top-level help imports them all.
_COMMANDS: dict[str, str] = {
    "serve": "api.cli.serve",
    "migrate": "api.cli.migrate",
    "orgs": "api.cli.orgs",
    "demo": "api.cli.demo",
    "clients": "api.cli.clients",
    "keys": "api.cli.keys",
    "schema": "api.cli.schema",
    "db": "api.cli.db",
    "audit": "api.cli.audit",
    "users": "api.cli.users",
    "worker": "api.cli.worker",
    "deliveries": "api.cli.deliveries",
    "graphql": "api.cli.graphql",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for one command (by name), or for all of them."""
    parser = argparse.ArgumentParser(
        prog="peerbridge",
        description="PeerBridge: federated GraphQL and FHIR R4 API for clinics and peer-support "
        "organizations. Configuration comes from PEERBRIDGE_* environment variables and "
        "DATABASE_URL (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _COMMANDS.items():
        if command in (None, name):
            importlib.import_module(module).register(subparsers)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    # The first positional argument names the command (top-level options take no value).
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in _COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad arguments
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        exit_code: int = args.handler(args)
    except CliError as error:
        return _fail(str(error))
    except DomainError as error:
        # Domain messages are written to be shown (never hold PHI); the code helps scripts.
        return _fail(f"{error} ({error.code})")
    except asyncpg.PostgresError as error:
        # Never the message or detail: they can echo data values.
        return _fail(f"database error ({type(error).__name__})")
    except KeyboardInterrupt:
        return 130
    return exit_code


def _fail(message: str) -> int:
    print(f"peerbridge: error: {message}", file=sys.stderr)
    return 1


def _version() -> str:
    try:
        return version("peerbridge")
    except PackageNotFoundError:
        return "(not installed)"


if __name__ == "__main__":
    sys.exit(main())
