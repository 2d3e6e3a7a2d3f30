"""Page-load time of the console inbox on the benchmark network (`--referrals 100000` puts 10k
referrals in the caller's inbox), beside its floor: the same page of the same services
(list_referrals + get_patients, decided and audited alike) without sessions, HTML or HTTP.

    DATABASE_URL=postgresql://... python -m benchmarks.console_inbox --referrals 100000

The app runs in-process (ASGI, no sockets), so the times are the server's share of a page load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import mkdtemp

import httpx
from asgi_lifespan import LifespanManager

from api.app import create_app
from api.db.pool import create_pool
from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import patients, users
from api.services.filters import ReferralBox, ReferralFilter
from api.services.pagination import PageRequest
from api.services.referrals import list_referrals
from api.settings import Settings
from benchmarks import dataset
from benchmarks.harness import bench_kek

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _timed(label: str, runs: int, call: Callable[[], Awaitable[object]]) -> None:
    await call()  # warm: caches, prepared statements
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{label:<44} median {statistics.median(samples):7.1f} ms   p95 {p95:7.1f} ms")


async def run(referrals: int, runs: int, seed: int) -> None:
    data = await dataset.ensure(os.environ["DATABASE_URL"], referrals, seed)
    # The key the dataset's signing keys were sealed under (benchmarks/harness.py), so a cached
    # dataset opens again on the next run.
    settings = Settings(
        database_url=data.url, data_dir=Path(mkdtemp()), key_encryption_key=bench_kek()
    )
    email, password = f"bench-{secrets.token_hex(4)}@bench.example", secrets.token_urlsafe(16)
    pool = await create_pool(settings)
    try:
        user = await users.create_user(
            PostgresUnitOfWork(pool),
            users.CreateStaffUser(
                data.caller_organization_id, email, StaffRole.COORDINATOR, password
            ),
        )
        async with pool.acquire() as conn:
            inbox = await conn.fetchval(
                "SELECT count(*) FROM referrals WHERE performer_organization_id = $1",
                data.caller_organization_id,
            )
        print(f"inbox of the caller: {inbox} referrals; page size 50")
        principal = users.principal_of(user)

        async def floor() -> None:
            page = await list_referrals(
                PostgresUnitOfWork(pool),
                principal,
                ReferralFilter(box=ReferralBox.INBOX),
                PageRequest.of(50, None),
            )
            ids = list(dict.fromkeys(v.referral.patient_id for v in page.items))
            await patients.get_patients(PostgresUnitOfWork(pool), principal, ids)

        app = create_app(settings)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                form = await client.get("/console/login")
                token = _TOKEN.search(form.text)
                assert token is not None
                signed = await client.post(
                    "/console/login",
                    data={"email": email, "password": password, "csrf_token": token.group(1)},
                )
                assert signed.status_code == 303, signed.status_code

                async def page(query: str) -> None:
                    response = await client.get(f"/console/inbox?{query}")
                    assert response.status_code == 200, response.status_code

                await _timed("GET /console/inbox?status=all", runs, lambda: page("status=all"))
                await _timed("GET /console/inbox (open)", runs, lambda: page("status=open"))
                await _timed("floor: the services alone (all)", runs, floor)
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1, help="another seed builds another copy")
    args = parser.parse_args()
    asyncio.run(run(args.referrals, args.runs, args.seed))


if __name__ == "__main__":
    main()
