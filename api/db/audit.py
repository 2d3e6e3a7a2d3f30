"""The append-only audit trail over asyncpg: one INSERT per batch of records.

The database sets `recorded_at`, `xid` and `row_hash` of every row it inserts (trigger
`audit_events_seal`, 0010_audit_evidence.sql); api/db/audit_evidence.py reads them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from api.domain.audit import AuditAction, AuditEvent, AuditOutcome, AuditRecord
from api.observability.metrics import AUDIT_ROWS

FIELDS = (
    "action, outcome, operation, resource_type, resource_id, patient_id, client_id, "
    "organization_id, subject, purpose, consent_ids, detail_code, source_ip, trace_id"
)


def event_from_row(row: asyncpg.Record) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        recorded_at=row["recorded_at"],
        record=AuditRecord(
            action=AuditAction(row["action"]),
            outcome=AuditOutcome(row["outcome"]),
            operation=row["operation"],
            resource_type=row["resource_type"],
            resource_id=row["resource_id"],
            patient_id=row["patient_id"],
            client_id=row["client_id"],
            organization_id=row["organization_id"],
            subject=row["subject"],
            purpose=row["purpose"],
            consent_ids=tuple(row["consent_ids"]),
            detail_code=row["detail_code"],
            source_ip=row["source_ip"],
            trace_id=row["trace_id"],
        ),
    )


class PostgresAuditRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add_many(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        AUDIT_ROWS.inc(len(records))
        # consent_ids is an array per row: carried as text and split, since unnest flattens
        # nested arrays.
        await self._db.execute(
            f"INSERT INTO audit_events ({FIELDS}) "
            "SELECT a, o, op, rt, rid, pid, cid, oid, sub, pur, "
            "COALESCE(string_to_array(NULLIF(cons, ''), ',')::uuid[], '{}'), det, ip, tr "
            "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::uuid[], "
            "$7::text[], $8::uuid[], $9::text[], $10::text[], $11::text[], $12::text[], "
            "$13::text[], $14::text[]) AS t(a, o, op, rt, rid, pid, cid, oid, sub, pur, cons, "
            "det, ip, tr)",
            [r.action.value for r in records],
            [r.outcome.value for r in records],
            [r.operation for r in records],
            [r.resource_type for r in records],
            [r.resource_id for r in records],
            [r.patient_id for r in records],
            [r.client_id for r in records],
            [r.organization_id for r in records],
            [r.subject for r in records],
            [r.purpose for r in records],
            [",".join(str(c) for c in r.consent_ids) for r in records],
            [r.detail_code for r in records],
            [r.source_ip for r in records],
            [r.trace_id for r in records],
        )

    async def for_patient(
        self,
        patient_id: UUID,
        organization_id: UUID | None,
        before: datetime | None,
        limit: int,
        *,
        before_id: UUID | None = None,
    ) -> list[AuditEvent]:
        rows = await self._db.fetch(
            f"SELECT id, recorded_at, {FIELDS} FROM audit_events WHERE patient_id = $1 "
            "AND ($2::uuid IS NULL OR organization_id = $2) "
            "AND ($3::timestamptz IS NULL OR recorded_at < $3 "
            "     OR (recorded_at = $3 AND $5::uuid IS NOT NULL AND id < $5)) "
            "ORDER BY recorded_at DESC, id DESC LIMIT $4",
            patient_id,
            organization_id,
            before,
            limit,
            before_id,
        )
        return [event_from_row(row) for row in rows]

    async def get_many(self, ids: Sequence[UUID]) -> list[AuditEvent | None]:
        rows = await self._db.fetch(
            f"SELECT id, recorded_at, {FIELDS} FROM audit_events WHERE id = ANY($1::uuid[])",
            list(ids),
        )
        found = {row["id"]: event_from_row(row) for row in rows}
        return [found.get(i) for i in ids]

    async def recorded_between(
        self,
        since: datetime,
        until: datetime,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[AuditEvent]:
        """Events recorded in [since, until), oldest first; `after` continues a page."""
        rows = await self._db.fetch(
            f"SELECT id, recorded_at, {FIELDS} FROM audit_events "
            "WHERE recorded_at >= $1 AND recorded_at < $2 "
            "AND ($3::timestamptz IS NULL OR (recorded_at, id) > ($3, $4::uuid)) "
            "ORDER BY recorded_at, id LIMIT $5",
            since,
            until,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [event_from_row(row) for row in rows]

    async def disclosures(
        self,
        patient_id: UUID,
        holder_id: UUID,
        since: datetime,
        until: datetime,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[AuditEvent]:
        """Successful reads of the patient's data by organizations other than the holder,
        recorded in [since, until), oldest first."""
        rows = await self._db.fetch(
            f"SELECT id, recorded_at, {FIELDS} FROM audit_events "
            "WHERE patient_id = $1 AND organization_id <> $2 AND action = 'R' "
            "AND outcome = 'success' AND recorded_at >= $3 AND recorded_at < $4 "
            "AND ($5::timestamptz IS NULL OR (recorded_at, id) > ($5, $6::uuid)) "
            "ORDER BY recorded_at, id LIMIT $7",
            patient_id,
            holder_id,
            since,
            until,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
        return [event_from_row(row) for row in rows]
