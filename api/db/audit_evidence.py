"""Checkpoints over the audit trail (table `audit_checkpoints`, 0010_audit_evidence.sql)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

import asyncpg

from api.db.audit import FIELDS, event_from_row
from api.domain.audit_evidence import (
    CheckpointClaims,
    ManifestEntry,
    SealedAuditRow,
    SignedClaims,
    StoredCheckpoint,
)

# Any constant works as long as every PeerBridge process uses the same one: "PBAUDCKP" in hex.
_CHECKPOINT_LOCK_KEY = 0x5042415544434B50
_CHECKPOINT_COLUMNS = (
    "seq, xid_from, xid_to, row_count, root, previous, created_at, kid, signature, "
    "key_attestation, manifest"
)

# pg_locks and pg_prepared_xacts show 32-bit xids: matched on the low 32 bits of the running
# xid8 (all running xids lie within 2^31 of each other, so that is unambiguous).
_HORIZON = """
WITH snapshot AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT l.transactionid::text::bigint AS xid32
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
      AND a.datname IS DISTINCT FROM current_database()
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts
    WHERE database IS DISTINCT FROM current_database()
)
SELECT coalesce(
           (SELECT min(x) FROM snapshot, pg_snapshot_xip(s) AS x
            WHERE pg_xact_status(x) = 'in progress'
              AND x::text::bigint % 4294967296 NOT IN (SELECT xid32 FROM elsewhere)),
           (SELECT pg_snapshot_xmax(s) FROM snapshot)) AS horizon,
       clock_timestamp() AS now
"""


def _checkpoint(row: asyncpg.Record) -> StoredCheckpoint:
    return StoredCheckpoint(
        claims=CheckpointClaims(
            seq=row["seq"],
            xid_from=row["xid_from"],
            xid_to=row["xid_to"],
            row_count=row["row_count"],
            root=bytes(row["root"]),
            previous=bytes(row["previous"]) if row["previous"] is not None else None,
            created_at=row["created_at"],
        ),
        signed=SignedClaims(
            kid=row["kid"],
            signature=row["signature"],
            key_attestation=bytes(row["key_attestation"]),
        ),
        manifest=bytes(row["manifest"]),
    )


def _sealed(row: asyncpg.Record) -> SealedAuditRow:
    return SealedAuditRow(event_from_row(row), xid=row["xid"], row_hash=bytes(row["row_hash"]))


class PostgresAuditEvidence:
    """Queries over one connection; the caller owns the transaction (see `evidence_session`)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def try_lock(self) -> bool:
        """Become the only checkpoint writer until this transaction ends (False: another is)."""
        return bool(
            await self._db.fetchval("SELECT pg_try_advisory_xact_lock($1)", _CHECKPOINT_LOCK_KEY)
        )

    async def latest(self) -> StoredCheckpoint | None:
        row = await self._db.fetchrow(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"
        )
        return _checkpoint(row) if row is not None else None

    async def horizon(self) -> tuple[int, datetime]:
        """An xid below which every transaction that could write to this database has ended,
        and the database's clock.

        The snapshot's xmin would do, but it is server-wide: a transaction left open in some
        other database would hold every checkpoint back. So a transaction still running counts
        unless it is known to belong to another database (through its lock on its own xid, or
        as a prepared transaction); one whose database cannot be told counts, to be safe.
        """
        row = await self._db.fetchrow(_HORIZON)
        assert row is not None
        return row["horizon"], row["now"]

    async def batch_end(self, xid_from: int, horizon: int, max_rows: int) -> int | None:
        """An exclusive xid bound > xid_from and <= horizon whose range holds at most max_rows
        rows (or the rows of one transaction, if that alone holds more); None: no rows."""
        row = await self._db.fetchrow(
            """SELECT
                 (SELECT min(xid) FROM audit_events WHERE xid >= $1 AND xid < $2) AS first,
                 (SELECT xid FROM audit_events WHERE xid >= $1 AND xid < $2
                  ORDER BY xid OFFSET $3 LIMIT 1) AS cut""",
            xid_from,
            horizon,
            max_rows,
        )
        assert row is not None
        first, cut = row["first"], row["cut"]
        if first is None:
            return None
        if cut is None:
            return horizon
        if cut > first:
            return int(cut)
        after_first = await self._db.fetchval(
            "SELECT min(xid) FROM audit_events WHERE xid > $1 AND xid < $2", first, horizon
        )
        return int(after_first) if after_first is not None else horizon

    async def rows(
        self, xid_from: int, xid_to: int | None, after: UUID | None, limit: int
    ) -> list[SealedAuditRow]:
        """Rows written by transactions in [xid_from, xid_to) (no upper bound: None), by id."""
        rows = await self._db.fetch(
            f"SELECT id, recorded_at, xid, row_hash, {FIELDS} FROM audit_events "
            "WHERE xid >= $1 AND ($2::xid8 IS NULL OR xid < $2) "
            "AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4",
            xid_from,
            xid_to,
            after,
            limit,
        )
        return [_sealed(row) for row in rows]

    async def entries(self, xid_from: int, xid_to: int) -> list[ManifestEntry]:
        """The ids and hashes of the rows written by transactions in [xid_from, xid_to), by id.

        Read whole (a checkpoint's range holds at most its row limit, `batch_end`) and through
        the xid index: paged by id, the planner walked the id index of the whole month and
        filtered on xid - ten seconds on three million rows, past the statement timeout."""
        rows = await self._db.fetch(
            "SELECT id, row_hash FROM audit_events WHERE xid >= $1 AND xid < $2 ORDER BY id",
            xid_from,
            xid_to,
        )
        return [ManifestEntry(row["id"], bytes(row["row_hash"])) for row in rows]

    async def add(self, checkpoint: StoredCheckpoint) -> None:
        claims, signed = checkpoint.claims, checkpoint.signed
        await self._db.execute(
            f"INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            claims.seq,
            claims.xid_from,
            claims.xid_to,
            claims.row_count,
            claims.root,
            claims.previous,
            claims.created_at,
            signed.kid,
            signed.signature,
            signed.key_attestation,
            checkpoint.manifest,
        )

    async def checkpoints(self, after_seq: int, limit: int) -> list[StoredCheckpoint]:
        rows = await self._db.fetch(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq > $1 "
            "ORDER BY seq LIMIT $2",
            after_seq,
            limit,
        )
        return [_checkpoint(row) for row in rows]


class PostgresAuditEvidenceStore:
    """Hands out `PostgresAuditEvidence` bound to a pooled connection inside a transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PostgresAuditEvidence]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresAuditEvidence(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PostgresAuditEvidence]:
        """One read-only, repeatable-read view: a verification sees a single state of the trail."""
        async with self._pool.acquire() as conn, conn.transaction(
            isolation="repeatable_read", readonly=True
        ):
            yield PostgresAuditEvidence(conn)
