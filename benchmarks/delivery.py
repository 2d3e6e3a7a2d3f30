"""Delivery worker: latency from commit to receipt, and events per second, on one worker.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/delivery.py [--latency-events 200] [--burst 2000]

A scratch database (migrated, dropped at the end unless `--keep`), a peer organization with one
active id-only Task subscription, a receiver (a bare asyncio HTTP server on loopback in a process of
its own, answers 204) and one `DeliveryWorker` with the default settings in this process. Then:

  latency   `--latency-events` referral events, each committed in its own transaction about
            every 20 ms; per event the time from its commit returning to the receiver reading
            the notification: p50, p99, max milliseconds
  burst     `--burst` events committed in one transaction over 100 referrals (per-referral
            order applies); the time from that commit to the last notification received:
            events per second

Outbox rows are written directly (what a use case's unit of work writes), so this measures the
delivery path (NOTIFY, sequencing, fan-out, claim, HTTP, outcome), not the use cases.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.auth import kek  # noqa: E402
from api.db.databases import create_database, drop_database, url_for_database  # noqa: E402
from api.db.migrate import migrate  # noqa: E402
from api.db.outbox import PostgresOutboxRepository  # noqa: E402
from api.db.pool import connect, create_pool  # noqa: E402
from api.db.uow import PostgresUnitOfWork  # noqa: E402
from api.delivery.worker import DeliveryWorker  # noqa: E402
from api.domain.deliveries import TASK_TOPIC, PayloadContent  # noqa: E402
from api.domain.events import DomainEvent  # noqa: E402
from api.domain.organizations import OrganizationKind  # noqa: E402
from api.domain.principal import Principal  # noqa: E402
from api.domain.scopes import parse_scopes  # noqa: E402
from api.services import organizations, subscriptions  # noqa: E402
from api.settings import Settings  # noqa: E402

# The receiver runs in its own process (so it does not take the worker's CPU): it prints
# "<event number> <wall-clock time>" per event notification and "handshake" for the handshake.
RECEIVER = r"""
import asyncio, re, time

# A bare HTTP/1.1 server (keep-alive, Content-Length bodies): cheap, so the numbers are the
# worker's, not a web framework's.
NUMBER = re.compile(rb'"name":"event-number","valueString":"(\d+)"')

async def serve(reader, writer):
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:  # the worker closed the connection
            return
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        body = await reader.readexactly(length)
        found = NUMBER.search(body)
        if found:
            print(found.group(1).decode(), time.time(), flush=True)
        elif b'"valueCode":"handshake"' in body:
            print("handshake", flush=True)
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print("port", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


class Receiver:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.arrived: dict[int, float] = {}  # event number → time.time() at receipt
        self.active = asyncio.Event()
        self.port = asyncio.get_running_loop().create_future()

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            words = line.decode().split()
            if words[0] == "port":
                self.port.set_result(int(words[1]))
            elif words[0] == "handshake":
                self.active.set()
            else:
                self.arrived.setdefault(int(words[0]), float(words[1]))


async def _wait(receiver: Receiver, count: int) -> None:
    while len(receiver.arrived) < count:
        await asyncio.sleep(0.001)


def _events(
    clinic: uuid.UUID, peer: uuid.UUID, referrals: list[uuid.UUID], n: int
) -> list[DomainEvent]:
    return [
        DomainEvent(
            "ReferralAccepted",
            "Referral",
            referrals[i % len(referrals)],
            (clinic, peer),
            {"status": "accepted", "version": 2},
        )
        for i in range(n)
    ]


async def _commit(pool: asyncpg.Pool, events: list[DomainEvent]) -> float:
    async with pool.acquire() as db, db.transaction():
        await PostgresOutboxRepository(db).add_many(events)
    return time.time()


async def run(url: str, latency_events: int, burst: int) -> None:
    settings = Settings(database_url=url, data_dir=Path(os.environ.get("TMPDIR", "/tmp")))
    pool = await create_pool(settings)
    secrets_key = kek.generate()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RECEIVER, stdout=asyncio.subprocess.PIPE
    )
    receiver = Receiver(process)
    reading = asyncio.create_task(receiver.read())
    try:
        suffix = secrets.token_hex(3)
        uow = PostgresUnitOfWork(pool)
        clinic = await organizations.create_organization(
            uow, name=f"Bench clinic {suffix}", kind=OrganizationKind.CLINIC
        )
        peer = await organizations.create_organization(
            uow, name=f"Bench peers {suffix}", kind=OrganizationKind.PEER_ORGANIZATION
        )
        principal = Principal("bench", peer.id, parse_scopes(["system/*.cruds"]), "bench")
        endpoint = f"http://127.0.0.1:{await receiver.port}/hook"
        await subscriptions.create_subscription(
            uow,
            principal,
            subscriptions.NewSubscription(
                TASK_TOPIC.canonical, (), endpoint, (), PayloadContent.ID_ONLY, None, None, {}
            ),
            subscriptions.EndpointPolicy(),
            secrets_key.seal,
            secrets_key.kek_id,
        )
        worker = DeliveryWorker(
            pool, settings, secrets_key, lambda: connect(settings, application_name="bench")
        )
        working = asyncio.create_task(worker.run())
        await asyncio.wait_for(receiver.active.wait(), 30)
        await asyncio.sleep(0.5)  # the handshake's outcome recorded: the subscription is active

        referrals = [uuid.uuid4() for _ in range(100)]
        committed: list[float] = []
        for i in range(latency_events):
            committed.append(
                await _commit(pool, _events(clinic.id, peer.id, [referrals[i % 100]], 1))
            )
            await asyncio.sleep(0.02)
        await _wait(receiver, latency_events)
        latencies = sorted(
            (receiver.arrived[n + 1] - committed[n]) * 1000 for n in range(latency_events)
        )
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"latency commit→receipt over {latency_events} events: "
            f"p50 {statistics.median(latencies):.1f} ms  p99 {p99:.1f} ms  "
            f"max {latencies[-1]:.1f} ms"
        )

        started = await _commit(pool, _events(clinic.id, peer.id, referrals, burst))
        await _wait(receiver, latency_events + burst)
        seconds = max(receiver.arrived.values()) - started
        print(
            f"burst of {burst} events in one commit (100 referrals): all received in "
            f"{seconds:.2f} s = {burst / seconds:.0f} events/s on one worker"
        )
        working.cancel()
    finally:
        process.terminate()
        await process.wait()
        reading.cancel()
        await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency-events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        raise SystemExit("set DATABASE_URL to a server where this role may CREATE DATABASE")
    admin = await asyncpg.connect(admin_url)
    name = f"pb_bench_delivery_{secrets.token_hex(3)}"
    await create_database(admin, name)
    try:
        url = url_for_database(admin_url, name)
        await migrate(url)
        await run(url, args.latency_events, args.burst)
    finally:
        if not args.keep:
            await drop_database(admin, name)
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
