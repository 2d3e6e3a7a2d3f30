"""`peerbridge deliveries list|retry`: notification deliveries, dead letters replayed."""

from __future__ import annotations

import argparse
import json

import asyncpg

from api.cli.common import CliError, run_with_pool
from api.db import deliveries as queue
from api.domain.deliveries import Delivery


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "deliveries",
        help="list and retry notification deliveries",
        description="Notification deliveries: pending, delivered, dead (out of tries).",
    )
    commands = parser.add_subparsers(dest="deliveries_command", metavar="COMMAND", required=True)
    listing = commands.add_parser(
        "list", help="newest first", description="List deliveries, newest first."
    )
    listing.add_argument("--dead", action="store_true", help="only the dead ones")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(handler=_list)
    retry = commands.add_parser(
        "retry",
        help="send dead deliveries again",
        description="Put dead deliveries back in the queue with fresh tries.",
    )
    retry.add_argument("ids", nargs="*", type=int, metavar="ID", help="delivery ids")
    retry.add_argument("--all-dead", action="store_true", help="every dead delivery")
    retry.set_defaults(handler=_retry)


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")

    async def listing(pool: asyncpg.Pool) -> list[Delivery]:
        return await queue.list_deliveries(pool, dead_only=args.dead, limit=args.limit)

    found = run_with_pool(listing)
    if args.json:
        for delivery in found:
            print(json.dumps(_as_json(delivery)))
    elif not found:
        print("no dead deliveries" if args.dead else "no deliveries")
    else:
        for d in found:
            print(
                f"{d.id:>8}  {d.status.value:<9}  {d.kind.value:<18}  tries {d.attempts:<3}  "
                f"subscription {d.subscription_id}  {d.last_error or '-'}"
            )
    return 0


def _retry(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all_dead):
        raise CliError("name delivery ids or --all-dead (one of them)")

    async def retry(pool: asyncpg.Pool) -> list[int]:
        return await queue.retry(pool, None if args.all_dead else args.ids)

    retried = run_with_pool(retry)
    missing = sorted(set(args.ids) - set(retried))
    if missing:
        raise CliError(f"not dead (or no such delivery): {', '.join(map(str, missing))}")
    print(f"queued {len(retried)} deliveries again")
    return 0


def _as_json(delivery: Delivery) -> dict[str, object]:
    return {
        "id": delivery.id,
        "notification_id": str(delivery.notification_id),
        "subscription_id": str(delivery.subscription_id),
        "kind": delivery.kind.value,
        "status": delivery.status.value,
        "event_id": str(delivery.event_id) if delivery.event_id else None,
        "event_number": delivery.event_number,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": delivery.next_attempt_at.isoformat(),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }
