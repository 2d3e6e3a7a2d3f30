"""`peerbridge worker` processes on one database: killed mid-burst and started again, nothing
is lost; two at once share the queue without sending a notification twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import httpx
from delivery_support import Received, Receiver, receiving, subscribe, subscription
from fhir_support import Fhir
from network import Network

from api.db.outbox import PostgresOutboxRepository
from api.domain.events import DomainEvent
from api.settings import Settings

REFERRALS = 50  # events go round-robin over this many referrals


@contextmanager
def worker_process(settings: Settings, lease_s: int = 1) -> Iterator[subprocess.Popen[bytes]]:
    """`peerbridge worker` on the test's database and key, with test timings (`lease_s`: how
    soon what a dead worker claimed goes out again)."""
    env = {
        **os.environ,
        "DATABASE_URL": str(settings.database_url),
        "PEERBRIDGE_DATA_DIR": str(settings.data_dir),
        "PEERBRIDGE_DELIVERY_LEASE_S": str(lease_s),
        "PEERBRIDGE_DELIVERY_POLL_INTERVAL_S": "0.2",
        "PEERBRIDGE_DELIVERY_BACKOFF_BASE_S": "0.05",
        "PEERBRIDGE_DELIVERY_BACKOFF_MAX_S": "0.2",
        "PEERBRIDGE_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen([sys.executable, "-m", "api.cli.main", "worker"], env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)  # a loaded machine may take its time


async def burst(pool: asyncpg.Pool, network: Network, count: int) -> list[uuid.UUID]:
    """`count` committed referral events (outbox rows), round-robin over REFERRALS referrals;
    id-only notifications name them without reading them."""
    referral_ids = [uuid.uuid4() for _ in range(REFERRALS)]
    events = [
        DomainEvent(
            "ReferralAccepted",
            "Referral",
            referral_ids[n % REFERRALS],
            (network.clinic.id, network.peer.id),
            {"status": "accepted", "version": n // REFERRALS + 1},
        )
        for n in range(count)
    ]
    async with pool.acquire() as db, db.transaction():
        await PostgresOutboxRepository(db).add_many(events)
    return referral_ids


async def wait_for_numbers(receiver: Receiver, count: int, timeout_s: float = 120) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if len({r.event_number for r in receiver.of_kind("event-notification")}) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not every event arrived")


def first_arrivals_in_order(events: list[Received]) -> bool:
    """Per referral, the events first arrive in their number order."""
    seen: set[int] = set()
    last: dict[str, int] = {}
    for event in events:
        if event.event_number in seen:
            continue
        seen.add(event.event_number)
        if event.event_number < last.get(event.focus, 0):
            return False
        last[event.focus] = event.event_number
    return True


async def test_a_worker_killed_mid_burst_and_started_again_loses_no_event(
    client: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings, network: Network
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    async with receiving() as receiver:
        await subscribe(peer, subscription(receiver.url))
        with worker_process(settings) as first:
            await receiver.wait_for("handshake")
            await burst(pool, network, 500)
            await receiver.wait_for("event-notification", 100, timeout_s=120)
            first.send_signal(signal.SIGKILL)  # no goodbye: its leases just run out
            first.wait(timeout=30)
        before_restart = len(receiver.of_kind("event-notification"))
        assert before_restart < 500, "the worker finished before it was killed"
        with worker_process(settings):
            await wait_for_numbers(receiver, 500)
    events = receiver.of_kind("event-notification")
    assert {e.event_number for e in events} == set(range(1, 501))
    # Sent twice only what was in flight when the worker died (a claim is 16 at most).
    assert len(events) - 500 <= 16
    assert first_arrivals_in_order(events)


async def test_two_workers_share_the_queue_without_sending_twice(
    client: httpx.AsyncClient, pool: asyncpg.Pool, settings: Settings, network: Network
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    async with receiving() as receiver:
        await subscribe(peer, subscription(receiver.url))
        # A long lease: a slow send on a loaded machine is not taken for a dead worker's.
        with worker_process(settings, lease_s=30), worker_process(settings, lease_s=30):
            await receiver.wait_for("handshake")
            await burst(pool, network, 300)
            await wait_for_numbers(receiver, 300)
    events = receiver.of_kind("event-notification")
    assert sorted(e.event_number for e in events) == list(range(1, 301))
    assert first_arrivals_in_order(events)
    async with pool.acquire() as db:
        # Each claimed once: neither worker sent what the other had claimed.
        assert await db.fetchval("SELECT max(attempts) FROM deliveries") == 1
        workers = await db.fetchval(
            # This test's database only: other PeerBridge processes may share the server.
            "SELECT count(DISTINCT pid) FROM pg_stat_activity "
            "WHERE application_name = 'peerbridge-delivery' AND datname = current_database()"
        )
    assert workers == 0  # both stopped on SIGTERM
