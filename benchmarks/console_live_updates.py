"""Console live updates: how long from a referral change's commit until every open inbox tab of
its organization hears it over Server-Sent Events, with `--tabs` streams open at once (each
signed in as its own coordinator; each event re-checks every tab's session and tenancy).

    DATABASE_URL=postgresql://... python -m benchmarks.console_live_updates --tabs 50

The app is served by uvicorn on 127.0.0.1 in this process (a stream needs a real server); the
changes are a hold and a resume of one in-progress referral of the caller's inbox, alternated,
so the run needs nothing but a referral and leaves the dataset as it found it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import socket
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from tempfile import mkdtemp
from uuid import UUID

import asyncpg
import httpx
import uvicorn

from api.app import create_app
from api.db.pool import create_pool
from api.db.uow import PostgresUnitOfWork
from api.domain.referrals import Transition
from api.domain.staff import StaffRole
from api.services import referrals, users
from api.settings import Settings
from benchmarks import dataset
from benchmarks.harness import bench_kek

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_WAIT_S = 60.0


async def _serve(settings: Settings) -> AsyncIterator[str]:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def _signed_in(base_url: str, pool: asyncpg.Pool, organization_id: UUID) -> httpx.AsyncClient:
    email, password = f"tab-{secrets.token_hex(6)}@bench.example", secrets.token_urlsafe(16)
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(organization_id, email, StaffRole.COORDINATOR, password),
    )
    client = httpx.AsyncClient(base_url=base_url, timeout=_WAIT_S)
    form = await client.get("/console/login")
    token = _TOKEN.search(form.text)
    assert token is not None
    signed_in = await client.post(
        "/console/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    assert signed_in.status_code == 303, signed_in.status_code
    return client


async def _tab(
    client: httpx.AsyncClient, ready: asyncio.Event, heard: asyncio.Queue[float], wanted: int
) -> None:
    try:
        async with client.stream("GET", "/console/events") as response:
            assert response.status_code == 200, response.status_code
            changes = 0
            async for line in response.aiter_lines():
                if line == "event: ready":
                    ready.set()
                elif line == "event: changed":
                    heard.put_nowait(time.perf_counter())
                    changes += 1
                    if changes == wanted:
                        return
    finally:
        await client.aclose()


async def run(tabs: int, changes: int, referral_count: int) -> None:
    data = await dataset.ensure(os.environ["DATABASE_URL"], referral_count, seed=1)
    settings = Settings(
        database_url=data.url,
        data_dir=Path(mkdtemp()),
        key_encryption_key=bench_kek(),
        db_pool_max_size=20,
    )
    pool = await create_pool(settings)
    try:
        async with pool.acquire() as conn:
            referral_id = await conn.fetchval(
                "SELECT id FROM referrals WHERE performer_organization_id = $1 "
                "AND status IN ('in-progress', 'on-hold') ORDER BY id LIMIT 1",
                data.caller_organization_id,
            )
            status = await conn.fetchval("SELECT status FROM referrals WHERE id = $1", referral_id)
        assert referral_id is not None, "no in-progress referral in the caller's inbox"
        performer = dataset._principal(data.caller_organization_id)
        served = _serve(settings)
        base_url = await anext(served)
        try:
            heard: asyncio.Queue[float] = asyncio.Queue()
            readies = [asyncio.Event() for _ in range(tabs)]
            # One sign-in after another (a burst of sign-ins is not what is measured here).
            clients = [
                await _signed_in(base_url, pool, data.caller_organization_id) for _ in readies
            ]
            listening = [
                asyncio.create_task(_tab(client, ready, heard, changes))
                for client, ready in zip(clients, readies, strict=True)
            ]
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), _WAIT_S)
            print(f"{tabs} inbox tabs listening; {changes} changes, one at a time")
            last_heard: list[float] = []
            first_heard: list[float] = []
            on_hold = status == "on-hold"
            for _ in range(changes):
                move = Transition.RESUME if on_hold else Transition.HOLD
                await referrals.transition_referral(
                    PostgresUnitOfWork(pool),
                    performer,
                    referral_id,
                    move,
                    reason=None if on_hold else "benchmark",
                )
                committed = time.perf_counter()
                on_hold = not on_hold
                arrivals = [await asyncio.wait_for(heard.get(), _WAIT_S) for _ in range(tabs)]
                first_heard.append((min(arrivals) - committed) * 1000)
                last_heard.append((max(arrivals) - committed) * 1000)
            await asyncio.gather(*listening)
        finally:
            await anext(served, None)
    finally:
        await pool.close()
    for label, samples in (("first tab heard it", first_heard), ("every tab heard it", last_heard)):
        samples.sort()
        p95 = samples[max(0, int(len(samples) * 0.95) - 1)]
        print(
            f"commit -> {label:<20} median {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tabs", type=int, default=50)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--referrals", type=int, default=2000, help="the dataset size")
    args = parser.parse_args()
    asyncio.run(run(args.tabs, args.changes, args.referrals))


if __name__ == "__main__":
    main()
