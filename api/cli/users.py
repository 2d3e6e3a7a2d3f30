"""`peerbridge users create|list|disable|reset-password`: staff accounts of the console."""

from __future__ import annotations

import argparse
import json
import sys
from uuid import UUID

import asyncpg

from api.cli.common import CliError, find_organization_id, run_with_pool
from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole, StaffUser
from api.services import users


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "users",
        help="staff accounts of the console (/console)",
        description="Staff accounts: people of an organization who sign in to the console.",
    )
    commands = parser.add_subparsers(dest="users_command", metavar="COMMAND", required=True)

    create = commands.add_parser(
        "create",
        help="open a staff account",
        description="Open a staff account; the password is read from standard input, or the "
        "account signs in only with the organization's provider (--single-sign-on-only).",
    )
    create.add_argument("--org", required=True, help="organization name or id")
    create.add_argument("--email", required=True, help="the address the person signs in with")
    create.add_argument("--role", required=True, choices=[role.value for role in StaffRole])
    create.add_argument("--supporter", help="peer supporter id (required for --role supporter)")
    how = create.add_mutually_exclusive_group(required=True)
    _password_stdin(how)
    how.add_argument(
        "--single-sign-on-only",
        action="store_true",
        help="no password: the person signs in with the organization's OpenID Connect provider",
    )
    create.set_defaults(handler=_create)

    listing = commands.add_parser("list", help="list staff accounts", description="List them.")
    listing.add_argument("--org", help="only this organization (name or id)")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(handler=_list)

    disable = commands.add_parser(
        "disable", help="disable an account", description="Disable an account; its sessions end."
    )
    disable.add_argument("--email", required=True)
    disable.set_defaults(handler=_disable)

    reset = commands.add_parser(
        "reset-password",
        help="set a new password",
        description="Set a new password (read from standard input); open sessions end.",
    )
    reset.add_argument("--email", required=True)
    _password_stdin(reset)
    reset.set_defaults(handler=_reset)


def _password_stdin(parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        required=isinstance(parser, argparse.ArgumentParser),
        help="read the password from the first line of standard input (never an argument)",
    )


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("no password on standard input")
    return password


def _supporter(text: str | None) -> UUID | None:
    if text is None:
        return None
    try:
        return UUID(text)
    except ValueError:
        raise CliError("--supporter takes a peer supporter id (a UUID)") from None


def _create(args: argparse.Namespace) -> int:
    password = None if args.single_sign_on_only else _read_password()

    async def create(pool: asyncpg.Pool) -> StaffUser:
        command = users.CreateStaffUser(
            organization_id=await find_organization_id(pool, args.org),
            email=args.email,
            role=StaffRole(args.role),
            password=password,
            supporter_id=_supporter(args.supporter),
        )
        return await users.create_user(PostgresUnitOfWork(pool), command)

    user = run_with_pool(create)
    print(f"created {user.role.value} account {user.email} with id {user.id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    async def listing(pool: asyncpg.Pool) -> list[StaffUser]:
        org = await find_organization_id(pool, args.org) if args.org else None
        return await users.list_users(PostgresUnitOfWork(pool), org)

    accounts = run_with_pool(listing)
    for user in accounts:
        if args.json:
            print(json.dumps(_as_json(user)))
        else:
            state = "disabled" if user.disabled else "active"
            print(
                f"{user.id}  {user.organization_id}  {user.role.value:<11}  {state:<8}  "
                f"{user.email}"
            )
    if not accounts and not args.json:
        print("no staff accounts: add one with `peerbridge users create`")
    return 0


def _disable(args: argparse.Namespace) -> int:
    user = run_with_pool(lambda pool: users.disable_user(PostgresUnitOfWork(pool), args.email))
    print(f"disabled {user.email}; its console sessions ended")
    return 0


def _reset(args: argparse.Namespace) -> int:
    password = _read_password()
    user = run_with_pool(
        lambda pool: users.reset_password(PostgresUnitOfWork(pool), args.email, password)
    )
    print(f"set a new password for {user.email}; its console sessions ended")
    return 0


def _as_json(user: StaffUser) -> dict[str, object]:
    return {
        "id": str(user.id),
        "organization_id": str(user.organization_id),
        "email": user.email,
        "role": user.role.value,
        "supporter_id": str(user.supporter_id) if user.supporter_id else None,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }
