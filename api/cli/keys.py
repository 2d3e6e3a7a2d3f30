"""`peerbridge keys rotate|list|remove`: PeerBridge's access-token signing keys (operator)."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta

from api.auth import kek, keys
from api.auth.config import from_settings
from api.auth.runtime import load_kek
from api.cli.common import CliError, database, load_settings, open_pool
from api.db.signing_keys import SigningKeyRecord, SigningKeyRepository
from api.settings import Settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="rotate and list the access-token signing keys",
        description="Signing keys live in the database, private parts sealed with the "
        "key-encryption key (PEERBRIDGE_KEY_ENCRYPTION_KEY, or the one generated in the data "
        "directory). Every replica picks up a change within PEERBRIDGE_AUTH_SIGNING_KEY_REFRESH_S.",
    )
    commands = parser.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)

    rotate = commands.add_parser(
        "rotate", help="start signing with a new key",
        description="Add a new signing key. The previous key keeps verifying the tokens it "
        "signed until they expire; keys retired longer ago than a token lives are removed.",
    )
    rotate.set_defaults(handler=_rotate)

    listing = commands.add_parser("list", help="list signing keys", description="List keys.")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(handler=_list)

    remove = commands.add_parser(
        "remove", help="stop verifying with a retired key now (e.g. after a compromise)",
        description="Remove a retired key: tokens it signed fail at once, its private part is "
        "erased. The active key cannot be removed: rotate first. A kid is a base64url "
        "thumbprint and may start with '-': write `peerbridge keys remove -- KID`.",
    )
    remove.add_argument("kid", help="the key id, as `keys list` prints it")
    remove.set_defaults(handler=_remove)


def _retire_after(settings: Settings) -> timedelta:
    # A retired key must outlive every token it signed, clock leeway included.
    return timedelta(seconds=settings.access_token_lifetime_s + settings.auth_leeway_s)


def _rotate(args: argparse.Namespace) -> int:
    settings = load_settings()
    try:
        key_encryption_key = load_kek(from_settings(settings), production=settings.is_production)
    except kek.KeyEncryptionError as error:
        raise CliError(str(error)) from None

    with database(settings) as resolved:

        async def rotate() -> tuple[SigningKeyRecord, list[str]]:
            async with open_pool(resolved) as pool:
                return await keys.rotate(pool, key_encryption_key, _retire_after(resolved))

        record, removed = asyncio.run(rotate())
    print(f"new signing key {record.kid} ({record.alg}); the previous key still verifies "
          f"for {int(_retire_after(settings).total_seconds())} s")
    for kid in removed:
        print(f"removed expired key {kid}")
    return 0


def _list(args: argparse.Namespace) -> int:
    with database(load_settings()) as settings:

        async def fetch() -> list[SigningKeyRecord]:
            async with open_pool(settings) as pool, pool.acquire() as conn:
                return await SigningKeyRepository(conn).all()

        records = asyncio.run(fetch())
    for record in records:
        state = _state(record)
        if args.json:
            print(json.dumps({"kid": record.kid, "alg": record.alg, "state": state,
                              "created_at": record.created_at.isoformat(),
                              "kek_id": record.kek_id}))
        else:
            print(f"{record.kid}  {record.alg}  {state:<7}  {record.created_at:%Y-%m-%d %H:%M}"
                  f"  kek {record.kek_id}")
    return 0


def _state(record: SigningKeyRecord) -> str:
    if record.removed_at is not None:
        return "removed"
    return "retired" if record.retired_at is not None else "active"


def _remove(args: argparse.Namespace) -> int:
    with database(load_settings()) as settings:

        async def remove() -> SigningKeyRecord:
            async with open_pool(settings) as pool, pool.acquire() as conn:
                return await SigningKeyRepository(conn).remove(args.kid)

        record = asyncio.run(remove())
    print(f"removed signing key {record.kid}; tokens it signed no longer verify")
    return 0
