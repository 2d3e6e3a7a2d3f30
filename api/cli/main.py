"""`peerbridge`: the operator's command line. Entry point: `main()`.

Command groups plug in through `_COMMAND_GROUPS`: a module with `register(subparsers)` that adds
its parser(s) and sets `handler=<function(args) -> exit code>` on each.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

import asyncpg

from api.cli import clients, keys, migrate, orgs, schema, serve
from api.cli.common import CliError
from api.domain.errors import DomainError


class _CommandGroup(Protocol):
    def register(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None: ...


_COMMAND_GROUPS: tuple[_CommandGroup, ...] = (serve, migrate, orgs, schema, clients, keys)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="peerbridge",
        description="PeerBridge: federated GraphQL and FHIR R4 API for clinics and peer-support "
        "organizations. Configuration comes from PEERBRIDGE_* environment variables and "
        "DATABASE_URL (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
