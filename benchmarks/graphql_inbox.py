"""The referral inbox through GraphQL next to a plain Starlette JSON endpoint, same run, same
database, one uvicorn worker: requests/s and p50/p99 latency. The ratio is the figure.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/graphql_inbox.py [--seconds 5] [--rounds 3] [--concurrency 16]

Both endpoints answer the same question with the same bytes of data, for the same bearer token:
the first 50 referrals in the peer organization's inbox with patient name, program and status.
  graphql  POST /graphql  referrals(first: 50, filter: {box: INBOX}) { edges { node {
           id status priority patient { givenName familyName } program { name } } } }
  plain    GET /plain/inbox: the same service calls (list_referrals, then get_patients and
           get_programs concurrently, as the DataLoaders do), so the same SQL, consent decisions
           and audit rows, and a hand-built dict of the same shape; equality is checked first.
The difference is what GraphQL costs: parsing/validation (cached), limits, execution of
~350 fields, DataLoader scheduling, error handling. The server runs in its own process
(`uvicorn --workers 1`); the load comes from this process over loopback HTTP/1.1 keep-alive.
Needs a PostgreSQL where it may CREATE DATABASE (it makes and drops a scratch one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from graphql_support import token_for  # noqa: E402
from network import build_network, consent_to, register_patient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.db.databases import create_database, drop_database, url_for_database  # noqa: E402
from api.db.migrate import migrate  # noqa: E402
from api.db.pool import create_pool  # noqa: E402
from api.db.uow import PostgresUnitOfWork  # noqa: E402
from api.domain.errors import DomainError  # noqa: E402
from api.services import patients, programs, referrals  # noqa: E402
from api.services.filters import ReferralBox, ReferralFilter  # noqa: E402
from api.services.pagination import PageRequest  # noqa: E402
from api.settings import Settings  # noqa: E402

PAGE = 50
INBOX_QUERY = """query Inbox {
  referrals(first: 50, filter: {box: INBOX}) {
    edges { node { id status priority patient { givenName familyName } program { name } } }
  }
}"""


# --- the server side (imported by uvicorn in the worker process) ---------------------------


async def plain_inbox(request: Request) -> JSONResponse:
    """The same data as INBOX_QUERY, through the same services, without GraphQL."""
    principal = request.state.principal
    if principal is None:
        return JSONResponse({"error": "unauthenticated"}, 401)
    pool = request.app.state.pool
    page = await referrals.list_referrals(
        PostgresUnitOfWork(pool),
        principal,
        ReferralFilter(box=ReferralBox.INBOX),
        PageRequest.of(PAGE, None),
    )
    views = page.items
    patient_ids = list(dict.fromkeys(v.referral.patient_id for v in views if v.withheld is None))
    program_ids = list(dict.fromkeys(v.referral.program_id for v in views if v.referral.program_id))
    found_patients, found_programs = await asyncio.gather(
        patients.get_patients(PostgresUnitOfWork(pool), principal, patient_ids),
        programs.get_programs(PostgresUnitOfWork(pool), principal, program_ids),
    )
    people: dict[UUID, Any] = dict(zip(patient_ids, found_patients, strict=True))
    offered: dict[UUID, Any] = dict(zip(program_ids, found_programs, strict=True))

    def patient(view: referrals.ReferralView) -> dict[str, str] | None:
        found = people.get(view.referral.patient_id)
        if found is None or isinstance(found, DomainError):
            return None
        return {"givenName": found.given_name, "familyName": found.family_name}

    def program(program_id: UUID | None) -> dict[str, str] | None:
        found = offered.get(program_id) if program_id else None
        return None if found is None else {"name": found.name}

    edges = [
        {
            "node": {
                "id": str(v.referral.id),
                "status": v.referral.status.name,
                "priority": v.referral.priority.name,
                "patient": patient(v),
                "program": program(v.referral.program_id),
            }
        }
        for v in views
    ]
    return JSONResponse({"data": {"referrals": {"edges": edges}}})


def bench_app() -> Starlette:
    """`uvicorn --factory`: the real app (settings from the environment) plus the plain route."""
    app = create_app(Settings())
    app.router.routes.append(Route("/plain/inbox", plain_inbox, methods=["GET"]))
    return app


# --- the load side ----------------------------------------------------------------------------


async def _seed(pool: asyncpg.Pool) -> Any:
    """A peer organization with 60 referrals in its inbox across 12 consented patients."""
    network = await build_network(pool)
    people = [network.patient.id]
    for _ in range(11):
        person = await register_patient(network)
        await consent_to(network, person.id, network.peer)
        people.append(person.id)
    for index in range(60):
        await referrals.create_referral(
            network.uow(),
            network.as_clinic,
            referrals.CreateReferral(
                patient_id=people[index % len(people)],
                performer_organization_id=network.peer.id,
                program_id=network.program.id,
                reason_text="peer support",
            ),
        )
    return network


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _hammer(
    send: Callable[[], Awaitable[None]], seconds: float, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        while (begun := time.perf_counter()) < deadline:
            await send()
            latencies.append(time.perf_counter() - begun)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started


def _summary(rates: list[float], latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "rps": statistics.median(rates),
        "p50": ordered[len(ordered) // 2] * 1000,
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "n": len(ordered),
    }


async def _measure(base: str, token: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    headers = {"authorization": f"Bearer {token}"}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as http:

        async def graphql() -> None:
            response = await http.post("/graphql", json={"query": INBOX_QUERY})
            response.raise_for_status()

        async def plain() -> None:
            response = await http.get("/plain/inbox")
            response.raise_for_status()

        graphql_body = (await http.post("/graphql", json={"query": INBOX_QUERY})).json()
        plain_body = (await http.get("/plain/inbox")).json()
        assert "errors" not in graphql_body, graphql_body
        assert graphql_body == plain_body, "the two endpoints must return the same JSON"
        assert len(plain_body["data"]["referrals"]["edges"]) == PAGE

        endpoints = {"graphql": graphql, "plain": plain}
        rates: dict[str, list[float]] = {name: [] for name in endpoints}
        samples: dict[str, list[float]] = {name: [] for name in endpoints}
        for send in endpoints.values():
            await _hammer(send, 1.0, args.concurrency)  # warm-up
        for _ in range(args.rounds):
            for name, send in endpoints.items():  # interleaved, so drift hits both alike
                latencies, elapsed = await _hammer(send, args.seconds, args.concurrency)
                rates[name].append(len(latencies) / elapsed)
                samples[name] += latencies
        return {name: _summary(rates[name], samples[name]) for name in endpoints}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and endpoint")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        sys.exit("set DATABASE_URL to a PostgreSQL where this may CREATE DATABASE")
    admin = await asyncpg.connect(admin_url)
    name = f"pb_bench_inbox_{secrets.token_hex(3)}"
    await create_database(admin, name)
    url = url_for_database(admin_url, name)
    try:
        await migrate(url)
        with tempfile.TemporaryDirectory() as data_dir:
            await _run(url, data_dir, args)
    finally:
        await drop_database(admin, name)
        await admin.close()


async def _run(url: str, data_dir: str, args: argparse.Namespace) -> None:
    settings = Settings(database_url=url, data_dir=Path(data_dir))
    pool = await create_pool(settings)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "PEERBRIDGE_DATA_DIR": data_dir}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "graphql_inbox:bench_app",
         "--app-dir", str(ROOT / "benchmarks"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--log-level", "warning", "--no-access-log"],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        network = await _seed(pool)
        async with httpx.AsyncClient(base_url=base) as http:
            for _ in range(200):
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            token = await token_for(http, pool, network.peer)
        results = await _measure(base, token, args)
    finally:
        server.terminate()
        server.wait(timeout=15)
        await pool.close()
    graphql, plain = results["graphql"], results["plain"]
    print(
        f"referral inbox, first {PAGE} with patient, program, status; one uvicorn worker; "
        f"{args.concurrency} in flight; {args.rounds} x {args.seconds:g} s per endpoint"
    )
    print(f"{'endpoint':<10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}")
    for label, row in (("graphql", graphql), ("plain", plain)):
        print(f"{label:<10}{row['rps']:>9.0f}{row['p50']:>9.1f}{row['p99']:>9.1f}{row['n']:>10.0f}")
    print(f"graphql / plain throughput: {graphql['rps'] / plain['rps']:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
