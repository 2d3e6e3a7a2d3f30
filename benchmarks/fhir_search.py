"""FHIR search throughput: a 100-resource searchset Bundle with `_include`, next to the same
data as plain JSON, in one run on one fresh database.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/fhir_search.py

Measured (in-process, httpx on the ASGI app, so no socket cost in either column):
  fhir   GET /fhir/ServiceRequest?_count=100&_include=ServiceRequest:patient
         &_include=ServiceRequest:supporting-info&_revinclude=Task:focus
         (auth, search parsing, services with consent + audit, R4B mapping, Bundle, JSON)
  plain  the same services calls (referrals page, patients, consents) and json.dumps of the
         domain records, no FHIR: the floor a non-FHIR JSON endpoint would pay
  map    CPU only: to_fhir_* of the same records vs the records as plain dicts + json.dumps
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from graphql_support import token_for  # noqa: E402
from network import build_network, consent_to, register_patient  # noqa: E402

from api.app import create_app  # noqa: E402
from api.db.databases import create_database, drop_database, url_for_database  # noqa: E402
from api.db.migrate import migrate  # noqa: E402
from api.db.pool import create_pool  # noqa: E402
from api.db.uow import PostgresUnitOfWork  # noqa: E402
from api.domain.consents import DataClass  # noqa: E402
from api.integrations.fhir.resources.consents import to_fhir_consent  # noqa: E402
from api.integrations.fhir.resources.patients import to_fhir_patient  # noqa: E402
from api.integrations.fhir.resources.referrals import to_fhir_service_request, to_fhir_task  # noqa: E402
from api.services import consents, patients, referrals  # noqa: E402
from api.services.filters import ReferralFilter  # noqa: E402
from api.services.pagination import PageRequest  # noqa: E402
from api.settings import Settings  # noqa: E402

N = 100
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
QUERY = (
    "/fhir/ServiceRequest?_count=100&_include=ServiceRequest:patient"
    "&_include=ServiceRequest:supporting-info&_revinclude=Task:focus"
)


def _plain(value: Any) -> Any:
    return json.dumps([_record(v) for v in value], default=str, separators=(",", ":")).encode()


def _record(value: Any) -> Any:
    """A domain record as plain JSON values (its verbatim elements are read-only mappings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _record(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _record(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_record(v) for v in value]
    return value


async def _time(label: str, run: Callable[[], Awaitable[int]]) -> dict[str, float]:
    for _ in range(3):
        await run()
    samples, size = [], 0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        size = await run()
        samples.append(time.perf_counter() - started)
    p50 = statistics.median(samples) * 1000
    result = {"p50_ms": p50, "per_s": 1000 / p50, "bytes": size}
    print(f"{label:6} p50 {p50:8.2f} ms   {1000 / p50:7.1f} bundles/s   {size / 1024:7.1f} KiB")
    return result


async def main() -> None:
    admin_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"pb_bench_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_url)
    await create_database(admin, name)
    url = url_for_database(admin_url, name)
    try:
        await migrate(url)
        settings = Settings(
            database_url=url, environment="development", data_dir=Path("/tmp") / name
        )
        app = create_app(settings)
        async with LifespanManager(app):
            await _run(app, settings)
    finally:
        await drop_database(admin, name)
        await admin.close()


async def _run(app: Any, settings: Settings) -> None:
    pool = await create_pool(settings)
    network = await build_network(pool)
    for _ in range(N):
        patient = await register_patient(network)
        await consent_to(
            network, patient.id, network.peer, DataClass.DEMOGRAPHICS, DataClass.REFERRAL
        )
        await referrals.create_referral(
            PostgresUnitOfWork(pool),
            network.as_clinic,
            referrals.CreateReferral(
                patient_id=patient.id, performer_organization_id=network.peer.id
            ),
        )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        token = await token_for(client, pool, network.peer)
        headers = {"authorization": f"Bearer {token}"}

        async def fhir() -> int:
            response = await client.get(QUERY, headers=headers)
            assert response.status_code == 200, response.text
            return len(response.content)

        first = (await client.get(QUERY, headers=headers)).json()
        kinds: dict[str, int] = {}
        for entry in first["entry"]:
            kinds[entry["resource"]["resourceType"]] = (
                kinds.get(entry["resource"]["resourceType"], 0) + 1
            )
        print(f"Bundle entries: {len(first['entry'])} {kinds}")

        who = network.as_peer

        async def plain() -> int:
            page = await referrals.list_referrals(
                PostgresUnitOfWork(pool), who, ReferralFilter(), PageRequest(N)
            )
            found = [v.referral for v in page.items]
            people = await patients.get_patients(
                PostgresUnitOfWork(pool), who, [r.patient_id for r in found]
            )
            consented = await consents.get_consents(
                PostgresUnitOfWork(pool), who, [r.consent_id for r in found if r.consent_id]
            )
            return (
                len(_plain(found))
                + len(_plain([p for p in people if not isinstance(p, Exception)]))
                + len(_plain([c for c in consented if not isinstance(c, Exception)]))
            )

        page = await referrals.list_referrals(
            PostgresUnitOfWork(pool), who, ReferralFilter(), PageRequest(N)
        )
        records = [v.referral for v in page.items]
        people = [
            p
            for p in await patients.get_patients(
                PostgresUnitOfWork(pool), who, [r.patient_id for r in records]
            )
            if not isinstance(p, Exception)
        ]
        consented = [
            c
            for c in await consents.get_consents(
                PostgresUnitOfWork(pool), who, [r.consent_id for r in records if r.consent_id]
            )
            if not isinstance(c, Exception)
        ]
        now = datetime.now(UTC)

        async def map_fhir() -> int:
            out = [to_fhir_service_request(r) for r in records] + [to_fhir_task(r) for r in records]
            out += [to_fhir_patient(p) for p in people] + [
                to_fhir_consent(c, now=now) for c in consented
            ]
            return len(json.dumps(out, separators=(",", ":")).encode())

        async def map_plain() -> int:
            return len(_plain(records)) + len(_plain(people)) + len(_plain(consented))

        print(f"{N} referrals, {ROUNDS} rounds, Python {sys.version.split()[0]}")
        fhir_r = await _time("fhir", fhir)
        plain_r = await _time("plain", plain)
        print(f"FHIR / plain time: {fhir_r['p50_ms'] / plain_r['p50_ms']:.2f}x")
        map_f = await _time("mapF", map_fhir)
        map_p = await _time("mapP", map_plain)
        print(f"mapping only, FHIR / plain: {map_f['p50_ms'] / map_p['p50_ms']:.2f}x")
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
