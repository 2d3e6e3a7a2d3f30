"""The audit trail at 10M rows, before and after monthly partitioning (0013), same run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/audit_partitions.py [--rows 10000000] [--patients 200000]

Two scratch databases: `before` migrated up to 0010 (one table), `after` fully migrated (a
partition per month). Each gets the same `--rows` audit rows from one SQL generate_series,
spread evenly over the last 12 months, `--patients` patients, 500 organizations, 90 % reads, 95 %
successes (loaded with triggers off: the rows' hashes are not what this measures). Then, on
both, alternating so drift on a shared machine hits both alike:

  accounting   the accounting-of-disclosures query (PostgresAuditRepository.disclosures, the
               one api/services/audit_accounting.py pages through) for random patients, over
               the whole year and over one month: median and p95 milliseconds per call
  insert       a transaction of 50 audit rows (add_many, what an inbox page writes, commit
               included) onto the 10M: median and p95 milliseconds

and the partitions the one-month accounting plan reads. Needs a PostgreSQL superuser that may
CREATE DATABASE (the load sets session_replication_role). `--keep` keeps the databases.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.db.audit import PostgresAuditRepository  # noqa: E402
from api.db.databases import create_database, drop_database, url_for_database  # noqa: E402
from api.db.migrate import MIGRATIONS_DIR, migrate  # noqa: E402
from api.domain.audit import AuditAction, AuditOutcome, AuditRecord  # noqa: E402

ORGANIZATIONS = 500
CHUNK = 1_000_000
INSERT_ROWS = 50

# Patient n is md5('p' || n); organization k is md5('o' || k); the holder is organization 0.
# Rows arrive in time order, as a live trail's do.
_LOAD = """
INSERT INTO audit_events (id, recorded_at, action, outcome, operation, resource_type,
    resource_id, patient_id, client_id, organization_id, subject, purpose, consent_ids,
    source_ip, trace_id, xid, row_hash)
SELECT gen_random_uuid(), now() - (1 - g::float8 / $5) * interval '365 days',
       CASE WHEN g % 10 = 0 THEN 'C' ELSE 'R' END,
       CASE WHEN g % 20 = 7 THEN 'denied' ELSE 'success' END,
       'referrals', 'ServiceRequest', gen_random_uuid(), md5('p' || g % $3)::uuid,
       'bench-client', md5('o' || g % $4)::uuid, 'bench-client', 'TREAT',
       ARRAY[md5('c' || g % $3)::uuid], '203.0.113.7', md5(g::text), pg_current_xact_id(),
       '\\x00'::bytea
FROM generate_series($1::bigint, $2::bigint) AS g
"""


def _uuid(prefix: str, n: int) -> UUID:
    return UUID(hashlib.md5(f"{prefix}{n}".encode()).hexdigest())


def _records(count: int) -> list[AuditRecord]:
    patient = uuid4()
    return [
        AuditRecord(
            action=AuditAction.READ,
            outcome=AuditOutcome.SUCCESS,
            operation="referrals",
            resource_type="ServiceRequest",
            resource_id=uuid4(),
            patient_id=patient,
            client_id="bench-client",
            organization_id=_uuid("o", 1),
            subject="bench-client",
            purpose="TREAT",
            consent_ids=(uuid4(),),
            source_ip="203.0.113.7",
            trace_id=secrets.token_hex(16),
        )
        for _ in range(count)
    ]


async def _load(url: str, rows: int, patients: int, partitioned: bool) -> float:
    conn = await asyncpg.connect(url)
    try:
        if partitioned:  # every month the rows fall in (the DEFAULT partition stays empty)
            await conn.execute(
                "SELECT audit_events_add_partition(m) FROM generate_series("
                "date_trunc('month', (now() - interval '366 days') AT TIME ZONE 'UTC') "
                "AT TIME ZONE 'UTC', now(), interval '1 month') AS m"
            )
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("SET maintenance_work_mem = '256MB'")
        started = time.perf_counter()
        # Indexes are dropped for the load and built again as the migrations define them.
        key = await conn.fetchrow(
            "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint "
            "WHERE conrelid = 'audit_events'::regclass AND contype = 'p'"
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'audit_events' "
            "AND indexname <> $1",
            key["conname"],
        )
        await conn.execute(f"ALTER TABLE audit_events DROP CONSTRAINT {key['conname']}")
        for index in indexes:
            await conn.execute(f"DROP INDEX {index['indexname']}")
        for first in range(1, rows + 1, CHUNK):
            last = min(first + CHUNK - 1, rows)
            await conn.execute(
                _LOAD, first, last, patients, ORGANIZATIONS, float(rows), timeout=None
            )
            print(f"  {'after' if partitioned else 'before'}: {last:,} rows", file=sys.stderr)
        await conn.execute(
            f"ALTER TABLE audit_events ADD CONSTRAINT {key['conname']} {key['definition']}",
            timeout=None,
        )
        for index in indexes:  # on a partitioned table: built on every partition, not ONLY
            definition = index["indexdef"].replace(" ON ONLY ", " ON ")
            await conn.execute(definition, timeout=None)
        await conn.execute("ANALYZE audit_events", timeout=None)
        return time.perf_counter() - started
    finally:
        await conn.close()


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered) * 1000:7.2f} / {p95 * 1000:7.2f}"


async def _accounting(conn: asyncpg.Connection, patient: UUID, since: datetime) -> float:
    started = time.perf_counter()
    await PostgresAuditRepository(conn).disclosures(
        patient, _uuid("o", 0), since, datetime.now(UTC), None, 1_000
    )
    return time.perf_counter() - started


async def _insert(conn: asyncpg.Connection) -> float:
    records = _records(INSERT_ROWS)
    started = time.perf_counter()
    async with conn.transaction():
        await PostgresAuditRepository(conn).add_many(records)
    return time.perf_counter() - started


async def _plan_partitions(conn: asyncpg.Connection, since: datetime) -> str:
    plan = await conn.fetchval(
        "EXPLAIN (FORMAT JSON) SELECT id FROM audit_events WHERE patient_id = $1 "
        "AND organization_id <> $2 AND action = 'R' AND outcome = 'success' "
        "AND recorded_at >= $3 AND recorded_at < $4 ORDER BY recorded_at, id LIMIT 1000",
        _uuid("p", 1), _uuid("o", 0), since, datetime.now(UTC),
    )
    tables = await conn.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass"
    )
    return f"{str(plan).count('Relation Name')} of {max(tables, 1)}"


async def _size(conn: asyncpg.Connection) -> str:
    total = await conn.fetchval(
        "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
        "WHERE c.relname = 'audit_events' OR c.relname LIKE 'audit_events\\_%' AND c.relkind = 'r'"
    )
    return f"{int(total or 0) / 2**30:.1f} GiB"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--patients", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=200, help="accounting calls per shape")
    parser.add_argument("--inserts", type=int, default=200, help="50-row transactions")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        raise SystemExit("set DATABASE_URL to a PostgreSQL where this may CREATE DATABASE")

    prefix = f"pb_bench_partitions_{secrets.token_hex(3)}"
    urls = {name: url_for_database(admin_url, f"{prefix}_{name}") for name in ("before", "after")}
    admin = await asyncpg.connect(admin_url)
    try:
        for name in urls:
            await create_database(admin, f"{prefix}_{name}")
        with tempfile.TemporaryDirectory() as before_0013:
            for path in MIGRATIONS_DIR.glob("*.sql"):
                if path.name < "0013":
                    shutil.copy(path, Path(before_0013) / path.name)
            await migrate(urls["before"], Path(before_0013))
        await migrate(urls["after"])

        # Both at once: each load is one backend's work, so two use two cores.
        seconds = await asyncio.gather(
            *(_load(url, args.rows, args.patients, name == "after") for name, url in urls.items())
        )
        loaded = dict(zip(urls, seconds, strict=True))

        conns = {name: await asyncpg.connect(url) for name, url in urls.items()}
        try:
            rng = random.Random(7)
            patients = [_uuid("p", rng.randrange(args.patients)) for _ in range(args.calls)]
            now = datetime.now(UTC)
            shapes = {"accounting, 12 months": now - timedelta(days=366),
                      "accounting, 1 month": now - timedelta(days=31)}
            timings: dict[tuple[str, str], list[float]] = {}
            for shape, since in shapes.items():
                for patient in patients:
                    for name, conn in conns.items():
                        sample = await _accounting(conn, patient, since)
                        timings.setdefault((shape, name), []).append(sample)
            for _ in range(args.inserts):
                for name, conn in conns.items():
                    sample = await _insert(conn)
                    timings.setdefault((f"insert {INSERT_ROWS} rows", name), []).append(sample)

            print(f"\n{args.rows:,} audit rows over 12 months, {args.patients:,} patients "
                  f"(~{args.rows // args.patients} rows each); median / p95 ms")
            print(f"{'':28}{'before (one table)':>22}{'after (by month)':>22}")
            for shape in [*shapes, f"insert {INSERT_ROWS} rows"]:
                print(f"{shape:28}{_ms(timings[(shape, 'before')]):>22}"
                      f"{_ms(timings[(shape, 'after')]):>22}")
            month = shapes["accounting, 1 month"]
            print(f"{'tables in the 1-month plan':28}"
                  f"{await _plan_partitions(conns['before'], month):>22}"
                  f"{await _plan_partitions(conns['after'], month):>22}")
            print(f"{'size with indexes':28}{await _size(conns['before']):>22}"
                  f"{await _size(conns['after']):>22}")
            print(f"{'load (s)':28}{loaded['before']:>22.0f}{loaded['after']:>22.0f}")
        finally:
            for conn in conns.values():
                await conn.close()
    finally:
        if not args.keep:
            for name in urls:
                await drop_database(admin, f"{prefix}_{name}")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
