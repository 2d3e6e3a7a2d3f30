"""Tamper evidence on the real PostgreSQL: rows hashed at insert, signed checkpoints over finished
transactions, and `verify` naming every row a superuser changed behind PeerBridge's back."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
import pytest
from joserfc.jwk import import_key

from api.auth import kek
from api.auth.audit_seal import CheckpointSigning, CheckpointVerification
from api.auth.keys import SigningKey, SigningKeys, new_signing_key
from api.db.audit import PostgresAuditRepository
from api.db.audit_evidence import PostgresAuditEvidence, PostgresAuditEvidenceStore
from api.db.migrate import MIGRATIONS_DIR, migrate
from api.db.signing_keys import SigningKeyRepository
from api.domain.audit import AuditAction, AuditOutcome, AuditRecord
from api.domain.audit_evidence import (
    FindingKind,
    StoredCheckpoint,
    decode_manifest,
    row_hash,
)
from api.services.audit_integrity import (
    VerificationReport,
    head_digest,
    take_checkpoints,
    verify_trail,
)


class _Ring:
    def __init__(self, signer: SigningKey) -> None:
        self._signer = signer

    async def signer(self) -> SigningKey:
        return self._signer


ORG = UUID("00000000-0000-4000-8000-0000000000aa")


def _record(operation: str = "readPatient", patient: UUID | None = None) -> AuditRecord:
    return AuditRecord(
        action=AuditAction.READ,
        outcome=AuditOutcome.SUCCESS,
        operation=operation,
        resource_type="Patient",
        resource_id=patient,
        patient_id=patient,
        client_id="client-a",
        organization_id=ORG,
        subject="client-a",
        purpose="treatment",
        consent_ids=(uuid4(), uuid4()),
        source_ip="203.0.113.9",
        trace_id="00-abc-01",
    )


async def _write(pool: asyncpg.Pool, count: int) -> None:
    async with pool.acquire() as conn:
        records = [_record(patient=uuid4()) for _ in range(count)]
        await PostgresAuditRepository(conn).add_many(records)


class Trail:
    def __init__(self, pool: asyncpg.Pool, key_encryption_key: kek.KeyEncryptionKey) -> None:
        self.pool = pool
        self.kek = key_encryption_key
        self.keys = SigningKeys(pool, key_encryption_key)
        self.store = PostgresAuditEvidenceStore(pool)

    async def checkpoint(self, max_rows: int = 10_000) -> list[int]:
        taken = await take_checkpoints(
            self.store, CheckpointSigning(self.keys, self.kek), max_rows=max_rows
        )
        return [claims.row_count for claims in taken]

    async def verify(self, witnesses: tuple[str, ...] = ()) -> VerificationReport:
        async with self.pool.acquire() as conn:
            records = await SigningKeyRepository(conn).all()
        return await verify_trail(
            self.store, CheckpointVerification(records, self.kek), witnesses=witnesses
        )

    async def store_checkpoints(self) -> list[StoredCheckpoint]:
        async with self.store.transaction() as evidence:
            return await evidence.checkpoints(0, 100)

    async def sealed_ids(self) -> set[UUID]:
        async with self.pool.acquire() as conn:
            manifests = await conn.fetch("SELECT manifest FROM audit_checkpoints")
        return {e.id for row in manifests for e in decode_manifest(bytes(row["manifest"]))}

    async def seal_everything(self, expected: set[UUID]) -> None:
        """Checkpoint until `expected` is sealed: transactions of other databases on the same
        server can hold the horizon back for a moment (xids are server-wide)."""
        deadline = time.monotonic() + 30
        while not expected <= await self.sealed_ids():
            assert time.monotonic() < deadline, "rows were never sealed"
            await self.checkpoint()
            await asyncio.sleep(0.05)


@pytest.fixture
async def trail(pool: asyncpg.Pool) -> AsyncIterator[Trail]:
    result = Trail(pool, kek.generate())
    await result.keys.ensure_active()
    yield result


async def _all_ids(pool: asyncpg.Pool) -> set[UUID]:
    async with pool.acquire() as conn:
        return {row["id"] for row in await conn.fetch("SELECT id FROM audit_events")}


async def test_the_database_hashes_each_row_as_verify_recomputes_it(
    pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await PostgresAuditRepository(conn).add_many([
            _record(),
            AuditRecord(AuditAction.CREATE, AuditOutcome.DENIED, "op,eration", "Task", None, None,
                        "clïent ✓", ORG, "", purpose="", detail_code="FORBIDDEN"),
        ])
        rows = await PostgresAuditEvidence(conn).rows(0, None, None, 10)
    assert len(rows) == 2
    for row in rows:
        assert row.row_hash == row_hash(row.event, row.xid)


@pytest.mark.parametrize(
    "statement",
    ["TRUNCATE audit_events", "TRUNCATE audit_checkpoints", "DELETE FROM audit_events",
     "UPDATE audit_events SET subject = 'x'"],
)
async def test_the_trail_refuses_truncate_update_and_delete_even_to_its_owner(
    pool: asyncpg.Pool, statement: str
) -> None:
    await _write(pool, 1)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="is append-only"):
            await conn.execute(statement)
    assert len(await _all_ids(pool)) == 1


async def test_a_writer_cannot_backdate_a_row_or_place_it_in_a_sealed_range(
    pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO audit_events (action, outcome, operation, resource_type, client_id, "
            "organization_id, subject, recorded_at, xid, row_hash) VALUES ('R', 'success', 'op', "
            "'Patient', 'c', $1, 's', '2001-01-01T00:00:00Z', '1', '\\x00')",
            ORG,
        )
        row = await conn.fetchrow(
            "SELECT recorded_at, xid::text::bigint AS xid, row_hash FROM audit_events"
        )
    assert row["recorded_at"].year >= 2026 and row["xid"] > 1 and len(row["row_hash"]) == 32


async def test_a_clean_trail_verifies_and_checkpoints_cover_every_row_once(
    trail: Trail
) -> None:
    await _write(trail.pool, 25)
    await trail.seal_everything(await _all_ids(trail.pool))
    await _write(trail.pool, 3)
    await trail.seal_everything(await _all_ids(trail.pool))

    report = await trail.verify()
    assert report.clean, [str(f) for f in report.findings]
    assert report.sealed_rows == 28 and report.unsealed_rows == 0
    assert report.checkpoints >= 2
    assert await trail.checkpoint() == []  # nothing new: no empty checkpoint


async def test_checkpoints_split_a_backlog_into_batches_but_keep_a_transaction_whole(
    trail: Trail
) -> None:
    await _write(trail.pool, 7)  # one transaction larger than a batch
    for _ in range(3):
        await _write(trail.pool, 4)
    await _write(trail.pool, 1)
    deadline = time.monotonic() + 30
    counts: list[int] = []
    while sum(counts) < 20:
        assert time.monotonic() < deadline
        counts += await trail.checkpoint(max_rows=5)
    # Whole transactions only: 7 alone, then 4s, the last 4 with the single row.
    assert counts[0] == 7
    assert set(counts[1:]) <= {1, 4, 5} and sum(counts) == 20
    assert (await trail.verify()).clean


async def test_a_transaction_still_in_flight_is_not_skipped_by_a_checkpoint(
    trail: Trail, database_url: str
) -> None:
    slow = await asyncpg.connect(database_url)
    try:
        transaction = slow.transaction()
        await transaction.start()
        await PostgresAuditRepository(slow).add_many([_record("slow")])  # the older xid
        await _write(trail.pool, 1)  # a younger transaction, committed first
        committed = await _all_ids(trail.pool)

        await trail.checkpoint()
        assert not committed & await trail.sealed_ids()  # horizon stops before the slow one

        await transaction.commit()
    finally:
        await slow.close()
    everything = await _all_ids(trail.pool)
    assert len(everything) == 2
    await trail.seal_everything(everything)
    assert (await trail.verify()).clean


async def test_verify_names_every_row_changed_behind_the_trail(trail: Trail) -> None:
    await _write(trail.pool, 6)
    await trail.seal_everything(await _all_ids(trail.pool))
    ids = sorted(await _all_ids(trail.pool))
    altered, removed, kept = ids[0], ids[1], ids[2]
    async with trail.pool.acquire() as conn:
        sealed_xid = await conn.fetchval("SELECT xid FROM audit_events WHERE id = $1", kept)
        # A superuser, triggers off: change a row, delete one, add one into the sealed range.
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        await conn.execute(
            "UPDATE audit_events SET outcome = 'denied' WHERE id = $1", altered
        )
        await conn.execute("DELETE FROM audit_events WHERE id = $1", removed)
        fake = uuid4()
        await conn.execute(
            "INSERT INTO audit_events (id, action, outcome, operation, resource_type, "
            "client_id, organization_id, subject, xid, row_hash) "
            "SELECT $1, action, outcome, operation, resource_type, client_id, "
            "organization_id, subject, xid, row_hash FROM audit_events WHERE id = $2",
            fake,
            kept,
        )
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
        assert sealed_xid is not None

    report = await trail.verify()
    found = {(f.kind, f.row_id) for f in report.findings}
    assert found == {
        (FindingKind.ROW_ALTERED, altered),
        (FindingKind.ROW_REMOVED, removed),
        (FindingKind.ROW_INSERTED, fake),
    }, [str(f) for f in report.findings]


async def test_a_row_altered_before_it_was_sealed_stays_visibly_altered(trail: Trail) -> None:
    await _write(trail.pool, 2)
    target = sorted(await _all_ids(trail.pool))[0]
    async with trail.pool.acquire() as conn:
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        await conn.execute("UPDATE audit_events SET subject = 'someone' WHERE id = $1", target)
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    assert {(f.kind, f.row_id) for f in (await trail.verify()).findings} == {
        (FindingKind.ROW_ALTERED, target)
    }
    await trail.seal_everything(await _all_ids(trail.pool))
    findings = (await trail.verify()).findings
    assert [(f.kind, f.row_id) for f in findings] == [(FindingKind.ROW_ALTERED, target)]


async def test_verify_reports_forged_removed_and_cut_off_checkpoints(trail: Trail) -> None:
    for _ in range(3):
        await _write(trail.pool, 2)
        await trail.seal_everything(await _all_ids(trail.pool))
    async with trail.pool.acquire() as conn:
        heads = await conn.fetch("SELECT seq, signature FROM audit_checkpoints ORDER BY seq")
        last = heads[-1]
        witness = head_digest(last["seq"], last["signature"])
        assert (await trail.verify((witness,))).clean

        # A superuser plants a key of their own and re-signs the first checkpoint with it.
        planted_kek = kek.generate()
        planted = new_signing_key(planted_kek)
        await conn.execute(
            "INSERT INTO signing_keys (kid, alg, public_jwk, private_ciphertext, kek_id, "
            "retired_at, removed_at) VALUES ($1, $2, $3::jsonb, NULL, $4, now(), now())",
            planted.kid, planted.alg, json.dumps(planted.public_jwk), planted.kek_id,
        )
        assert planted.private_ciphertext is not None
        der = planted_kek.open(planted.private_ciphertext, planted.kid.encode())
        ring = _Ring(SigningKey(planted.kid, planted.alg, import_key(der, "RSA")))
        first = (await trail.store_checkpoints())[0]
        forged = await CheckpointSigning(ring, planted_kek).sign(first.claims)  # type: ignore[arg-type]
        first_seq = first.claims.seq
        await conn.execute("ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")
        await conn.execute(
            "UPDATE audit_checkpoints SET kid = $2, signature = $3, key_attestation = $4 "
            "WHERE seq = $1",
            first_seq, forged.kid, forged.signature, forged.key_attestation,
        )
        # ...and cuts the tail off so the next checkpoint would re-seal those rows.
        await conn.execute("DELETE FROM audit_checkpoints WHERE seq = $1", last["seq"])
        await conn.execute("ALTER TABLE audit_checkpoints ENABLE TRIGGER USER")

    report = await trail.verify((witness,))
    kinds = {(f.kind, f.checkpoint) for f in report.findings}
    assert (FindingKind.BAD_SIGNATURE, first_seq) in kinds
    assert any("not attested" in f.detail for f in report.findings)
    assert (FindingKind.CHAIN_BROKEN, first_seq + 1) in kinds  # its digest no longer links
    assert (FindingKind.WITNESS_MISSING, None) in kinds


async def test_rows_written_before_0010_are_hashed_and_sealed_like_new_ones(
    empty_database_url: str, tmp_path: Path
) -> None:
    for name in ("0001_core.sql", "0002_auth.sql", "0003_fhir.sql", "0004_verbatim.sql"):
        shutil.copy(MIGRATIONS_DIR / name, tmp_path / name)
    await migrate(empty_database_url, tmp_path)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await conn.execute(
            "INSERT INTO audit_events (action, outcome, operation, resource_type, client_id, "
            "organization_id, subject, consent_ids) SELECT 'R', 'success', 'op' || n, 'Patient', "
            "'c', $1, 's', ARRAY[gen_random_uuid()] FROM generate_series(1, 5) AS n",
            ORG,
        )
        await migrate(empty_database_url)
        rows = await PostgresAuditEvidence(conn).rows(0, None, None, 100)
    finally:
        await conn.close()
    assert len(rows) == 5
    assert all(row.row_hash == row_hash(row.event, row.xid) for row in rows)
