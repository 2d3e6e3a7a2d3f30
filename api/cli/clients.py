"""`peerbridge clients create|list|revoke|token`: OAuth clients of the organizations (operator)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import asyncpg

from api.auth import clients
from api.auth.smart_client import TokenRequestFailed, request_token
from api.cli.common import CliError, find_organization_id, load_settings, run_with_pool
from api.db.clients import ClientRecord


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "clients",
        help="register, list and revoke OAuth clients",
        description="OAuth clients act for one organization with the SMART scopes they are "
        "allowed. With --jwks-file/--jwks-url the client signs assertions (SMART Backend "
        "Services, private_key_jwt); without, it gets a generated secret (client_secret_basic).",
    )
    commands = parser.add_subparsers(dest="clients_command", metavar="COMMAND", required=True)

    create = commands.add_parser("create", help="register a client",
                                 description="Register a client and print its id (and secret).")
    create.add_argument("--org", required=True, help="organization id or exact name")
    create.add_argument("--name", required=True, help="what the client is, e.g. 'Epic interface'")
    create.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                        help="an allowed SMART v2 scope, e.g. system/ServiceRequest.rs "
                        "(repeat, or space-separate)")
    create.add_argument("--default-scope", action="append", default=[], metavar="SCOPE",
                        help="granted when a token request names no scope (default: all allowed)")
    keys = create.add_mutually_exclusive_group()
    keys.add_argument("--jwks-file", type=Path, help="the client's public JWK Set (JSON file)")
    keys.add_argument("--jwks-url", help="where the client publishes its JWK Set (https)")
    create.add_argument("--client-id", help="choose the id (default: random)")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    create.set_defaults(handler=_create)

    listing = commands.add_parser("list", help="list clients", description="List clients.")
    listing.add_argument("--org", help="only this organization (id or exact name)")
    listing.add_argument("--active", action="store_true", help="hide revoked clients")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(handler=_list)

    revoke = commands.add_parser(
        "revoke", help="revoke a client",
        description="Revoke a client: token requests fail at once, its outstanding tokens "
        "within PEERBRIDGE_AUTH_CLIENT_STATUS_TTL_S (5 s by default) on every replica.",
    )
    revoke.add_argument("client_id")
    revoke.set_defaults(handler=_revoke)

    token = commands.add_parser(
        "token", help="get an access token as a SMART backend client (for trying the API)",
        description="Sign an RS384/ES384 client assertion with a private JWK and exchange it "
        "at the server's token endpoint (found via /.well-known/smart-configuration). Prints "
        "the access token only, for `curl -H \"Authorization: Bearer $(...)\"`.",
    )
    token.add_argument("--client-id", required=True)
    token.add_argument("--key", type=Path, required=True, help="the client's private JWK file")
    token.add_argument("--url", default=None,
                       help="PeerBridge base URL (default: PEERBRIDGE_PUBLIC_BASE_URL)")
    token.add_argument("--scope", default=None, help="space-separated scopes to request")
    token.set_defaults(handler=_token)


def _split(values: list[str]) -> list[str]:
    return [scope for value in values for scope in value.split()]


def _read_jwks(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read a JSON JWK Set from {path} ({type(error).__name__})") from None
    if not isinstance(document, dict):
        raise CliError(f"{path} does not hold a JWK Set")
    return document


def _create(args: argparse.Namespace) -> int:
    jwks = _read_jwks(args.jwks_file) if args.jwks_file else None

    async def create(pool: asyncpg.Pool) -> clients.NewClient:
        return await clients.create_client(
            pool,
            organization_id=await find_organization_id(pool, args.org),
            name=args.name,
            scopes=_split(args.scope),
            default_scopes=_split(args.default_scope),
            jwks=jwks,
            jwks_uri=args.jwks_url,
            client_id=args.client_id,
        )

    new = run_with_pool(create)
    if args.json:
        print(json.dumps({**_as_json(new.client), "client_secret": new.secret}))
        return 0
    record = new.client
    print(f"created client {record.client_id} ({record.auth_method}) for organization "
          f"{record.organization_id}")
    print(f"allowed scopes: {' '.join(record.allowed_scopes)}")
    if new.secret:
        print(f"client secret: {new.secret}")
        print("store the secret now: it is kept only as a hash and cannot be shown again",
              file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    async def fetch(pool: asyncpg.Pool) -> list[ClientRecord]:
        organization_id = await find_organization_id(pool, args.org) if args.org else None
        return await clients.list_clients(pool, organization_id, include_revoked=not args.active)

    records = run_with_pool(fetch)
    if args.json:
        for record in records:
            print(json.dumps(_as_json(record)))
    elif not records:
        print("no clients yet: add one with `peerbridge clients create`")
    else:
        for r in records:
            print(f"{r.client_id:<24}  {r.status:<7}  {r.auth_method:<19}  "
                  f"{r.organization_id}  {r.name}  [{' '.join(r.allowed_scopes)}]")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    async def revoke(pool: asyncpg.Pool) -> ClientRecord:
        return await clients.revoke_client(pool, args.client_id)

    record = run_with_pool(revoke)
    print(f"revoked client {record.client_id}; its tokens stop working within seconds")
    return 0


def _token(args: argparse.Namespace) -> int:
    base_url = args.url or load_settings().base_url
    try:
        key = json.loads(args.key.read_text())
    except (OSError, ValueError) as error:
        raise CliError(f"cannot read a JWK from {args.key} ({type(error).__name__})") from None
    try:
        print(request_token(base_url, args.client_id, key, scope=args.scope))
    except TokenRequestFailed as error:
        raise CliError(str(error)) from None
    return 0


def _as_json(record: ClientRecord) -> dict[str, object]:
    return {
        "client_id": record.client_id,
        "organization_id": str(record.organization_id),
        "name": record.name,
        "auth_method": record.auth_method,
        "allowed_scopes": list(record.allowed_scopes),
        "default_scopes": list(record.default_scopes),
        "jwks_uri": record.jwks_uri,
        "status": record.status,
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }
