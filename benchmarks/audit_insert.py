"""What the audit trail's tamper evidence costs a writer, evidence on vs off in the same run.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python benchmarks/audit_insert.py [--transactions 400] [--rows 5] [--rounds 7]

Two shapes: transactions of `--rows` audit rows (`PostgresAuditRepository.add_many`, what a
request does, commit included), and big transactions of `--bulk-rows` rows (the per-row cost
with the commit's fsync amortised away). Rounds alternate between the schemas so drift on a
shared machine hits all of them alike; each line is the median over rounds:

  off: schema before 0010    no xid/row_hash columns, no seal trigger, no xid/recorded indexes
  on, trigger disabled       0010 schema with the seal trigger off (and row_hash nullable):
                             the extra columns and the two extra indexes alone
  on                         0010 as shipped: trigger sets recorded_at, xid, SHA-256 row hash

Then, on the evidence-on database (whose rows the rounds wrote): sealing every row into signed
checkpoints (`take_checkpoints`), and `verify_trail` over all of it.

Needs a PostgreSQL where it may CREATE DATABASE (it makes and drops scratch ones).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from uuid import uuid4

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.auth import kek  # noqa: E402
from api.auth.audit_seal import CheckpointSigning, CheckpointVerification  # noqa: E402
from api.auth.keys import SigningKeys  # noqa: E402
from api.db.audit import PostgresAuditRepository  # noqa: E402
from api.db.audit_evidence import PostgresAuditEvidenceStore  # noqa: E402
from api.db.databases import create_database, drop_database, url_for_database  # noqa: E402
from api.db.migrate import MIGRATIONS_DIR, migrate  # noqa: E402
from api.db.pool import create_pool  # noqa: E402
from api.db.signing_keys import SigningKeyRepository  # noqa: E402
from api.domain.audit import AuditAction, AuditOutcome, AuditRecord  # noqa: E402
from api.services.audit_integrity import take_checkpoints, verify_trail  # noqa: E402
from api.settings import Settings  # noqa: E402

ORG = uuid4()


def _records(count: int) -> list[AuditRecord]:
    patient = uuid4()
    return [
        AuditRecord(
            action=AuditAction.READ,
            outcome=AuditOutcome.SUCCESS,
            operation="readReferral",
            resource_type="Referral",
            resource_id=uuid4(),
            patient_id=patient,
            client_id="bench-client",
            organization_id=ORG,
            subject="bench-client",
            purpose="treatment",
            consent_ids=(uuid4(),),
            source_ip="203.0.113.7",
            trace_id=secrets.token_hex(16),
        )
        for _ in range(count)
    ]


async def _write(conn: asyncpg.Connection, transactions: int, rows: int) -> float:
    """Seconds to commit `transactions` transactions of `rows` audit rows each."""
    batches = [_records(rows) for _ in range(transactions)]
    repo = PostgresAuditRepository(conn)
    started = time.perf_counter()
    for batch in batches:
        async with conn.transaction():
            await repo.add_many(batch)
    return time.perf_counter() - started


async def _databases(admin_url: str, prefix: str) -> dict[str, str]:
    admin = await asyncpg.connect(admin_url)
    try:
        urls = {}
        for name in ("off", "untriggered", "on"):
            database = f"{prefix}_{name}"
            await create_database(admin, database)
            urls[name] = url_for_database(admin_url, database)
    finally:
        await admin.close()
    before_0010 = Path(tempfile.mkdtemp(prefix="pb-bench-migrations-"))
    try:
        for path in MIGRATIONS_DIR.glob("*.sql"):
            if path.name < "0010":
                shutil.copy(path, before_0010 / path.name)
        await migrate(urls["off"], before_0010)
    finally:
        shutil.rmtree(before_0010)
    await migrate(urls["untriggered"])
    await migrate(urls["on"])
    conn = await asyncpg.connect(urls["untriggered"])
    try:
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_seal")
        await conn.execute("ALTER TABLE audit_events ALTER COLUMN row_hash DROP NOT NULL")
    finally:
        await conn.close()
    return urls


async def _seal_and_verify(url: str) -> None:
    pool = await create_pool(Settings(database_url=url, db_statement_timeout_ms=0))
    try:
        key_encryption_key = kek.generate()
        keys = SigningKeys(pool, key_encryption_key)
        await keys.ensure_active()
        store = PostgresAuditEvidenceStore(pool)
        rows = await pool.fetchval("SELECT count(*) FROM audit_events")
        started = time.perf_counter()
        taken = await take_checkpoints(store, CheckpointSigning(keys, key_encryption_key))
        sealing = time.perf_counter() - started
        async with pool.acquire() as conn:
            records = await SigningKeyRepository(conn).all()
        started = time.perf_counter()
        report = await verify_trail(store, CheckpointVerification(records, key_encryption_key))
        verifying = time.perf_counter() - started
    finally:
        await pool.close()
    assert report.clean and report.sealed_rows == rows
    print(f"  seal {rows} rows into {len(taken)} checkpoints: {sealing:.2f} s "
          f"({sealing / rows * 1e6:.1f} µs/row)")
    print(f"  verify them all:                  {verifying:.2f} s "
          f"({verifying / rows * 1e6:.1f} µs/row)")


_LABELS = {"off": "off (schema before 0010)", "untriggered": "on, seal trigger disabled",
           "on": "on (0010 as shipped)"}


def _report(seconds: dict[str, list[float]], rows: int) -> None:
    base = statistics.median(seconds["off"]) / rows
    best_base = min(seconds["off"]) / rows
    for name, label in _LABELS.items():
        per_row = statistics.median(seconds[name]) / rows
        best = min(seconds[name]) / rows
        print(f"  {label:<28} {1 / per_row:9.0f} rows/s  {per_row * 1e6:7.1f} µs/row  "
              f"({(per_row - base) * 1e6:+6.1f} vs off; best round {best * 1e6:6.1f} µs/row, "
              f"{(best - best_base) * 1e6:+6.1f})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=400)
    parser.add_argument("--rows", type=int, default=5, help="audit rows per transaction")
    parser.add_argument("--bulk-transactions", type=int, default=10)
    parser.add_argument("--bulk-rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        sys.exit("set DATABASE_URL to a server where this may CREATE DATABASE")

    prefix = f"pb_bench_audit_{secrets.token_hex(3)}"
    urls = await _databases(admin_url, prefix)
    try:
        conns = {name: await asyncpg.connect(url) for name, url in urls.items()}
        for conn in conns.values():  # warm up: plans, caches, first pages
            await _write(conn, 50, args.rows)
        shapes = {
            f"{args.transactions} transactions x {args.rows} rows (a request's shape)":
                (args.transactions, args.rows),
            f"{args.bulk_transactions} transactions x {args.bulk_rows} rows (per-row cost "
            "without the commit)": (args.bulk_transactions, args.bulk_rows),
        }
        seconds = {(shape, name): [] for shape in shapes for name in urls}
        for _ in range(args.rounds):
            for shape, (transactions, rows) in shapes.items():
                for name, conn in conns.items():
                    seconds[(shape, name)].append(await _write(conn, transactions, rows))
        for conn in conns.values():
            await conn.close()

        print(f"one writer, median of {args.rounds} interleaved rounds")
        for shape, (transactions, rows) in shapes.items():
            print(shape)
            _report({name: seconds[(shape, name)] for name in urls}, transactions * rows)
        await _seal_and_verify(urls["on"])
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            for name in urls:
                await drop_database(admin, f"{prefix}_{name}")
        finally:
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
