"""Program sessions and attendance over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.sql import Where, first_per_parent
from api.domain.programs import DeliveryMode
from api.domain.sessions import (
    Attendance,
    AttendanceStatus,
    Billing,
    PeerSession,
    SessionFormat,
)

_COLUMNS = (
    "id, program_id, organization_id, format, delivery_mode, starts_at, ends_at, "
    "facilitator_ids, capacity, topic, version, created_at, updated_at"
)
_ATTENDANCE_COLUMNS = (
    "id, session_id, patient_id, organization_id, referral_id, status, units, hcpcs_code, "
    "modifiers, substance_use, note, version, created_at, updated_at"
)


_NEWEST_FIRST = "starts_at DESC, id DESC"


def _session(row: asyncpg.Record) -> PeerSession:
    return PeerSession(
        id=row["id"],
        program_id=row["program_id"],
        organization_id=row["organization_id"],
        format=SessionFormat(row["format"]),
        delivery_mode=DeliveryMode(row["delivery_mode"]),
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        facilitator_ids=tuple(row["facilitator_ids"]),
        capacity=row["capacity"],
        topic=row["topic"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _attendance(row: asyncpg.Record) -> Attendance:
    return Attendance(
        id=row["id"],
        session_id=row["session_id"],
        patient_id=row["patient_id"],
        organization_id=row["organization_id"],
        referral_id=row["referral_id"],
        status=AttendanceStatus(row["status"]),
        billing=Billing(row["units"], row["hcpcs_code"], tuple(row["modifiers"])),
        substance_use=row["substance_use"],
        note=row["note"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresSessionRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, session: PeerSession) -> PeerSession:
        row = await self._db.fetchrow(
            f"INSERT INTO peer_sessions ({_COLUMNS}) VALUES "
            f"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_COLUMNS}",
            session.id,
            session.program_id,
            session.organization_id,
            session.format.value,
            session.delivery_mode.value,
            session.starts_at,
            session.ends_at,
            list(session.facilitator_ids),
            session.capacity,
            session.topic,
            session.version,
            session.created_at,
            session.updated_at,
        )
        return _session(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[PeerSession | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM peer_sessions WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _session(row) for row in rows}
        return [found.get(i) for i in ids]

    async def add_attendance(self, attendance: Attendance) -> Attendance:
        # A correction replaces the earlier record and bumps its version, keeping its id.
        row = await self._db.fetchrow(
            f"INSERT INTO attendance ({_ATTENDANCE_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "ON CONFLICT (session_id, patient_id) DO UPDATE SET "
            "referral_id = EXCLUDED.referral_id, "
            "status = EXCLUDED.status, units = EXCLUDED.units, modifiers = EXCLUDED.modifiers, "
            "substance_use = EXCLUDED.substance_use, note = EXCLUDED.note, "
            "version = attendance.version + 1, updated_at = EXCLUDED.updated_at "
            f"RETURNING {_ATTENDANCE_COLUMNS}",
            attendance.id,
            attendance.session_id,
            attendance.patient_id,
            attendance.organization_id,
            attendance.referral_id,
            attendance.status.value,
            attendance.billing.units,
            attendance.billing.hcpcs_code,
            list(attendance.billing.modifiers),
            attendance.substance_use,
            attendance.note,
            attendance.version,
            attendance.created_at,
            attendance.updated_at,
        )
        return _attendance(row)

    async def attendance_for(
        self, *, session_ids: Sequence[UUID] = (), patient_ids: Sequence[UUID] = ()
    ) -> list[Attendance]:
        w = Where()
        if session_ids:
            w.add("session_id = ANY({}::uuid[])", list(session_ids))
        if patient_ids:
            w.add("patient_id = ANY({}::uuid[])", list(patient_ids))
        if not (session_ids or patient_ids):
            return []
        rows = await self._db.fetch(
            f"SELECT {_ATTENDANCE_COLUMNS} FROM attendance WHERE {w.sql()} ORDER BY created_at, id",
            *w.params,
        )
        return [_attendance(row) for row in rows]

    async def attendance_by_ids(self, ids: Sequence[UUID]) -> list[Attendance | None]:
        rows = await self._db.fetch(
            f"SELECT {_ATTENDANCE_COLUMNS} FROM attendance WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _attendance(row) for row in rows}
        return [found.get(i) for i in ids]


    async def for_programs(self, program_ids: Sequence[UUID], limit: int) -> list[PeerSession]:
        w = Where()
        w.add("program_id = ANY({}::uuid[])", list(program_ids))
        sql = first_per_parent(_COLUMNS, "peer_sessions", "program_id", w, _NEWEST_FIRST, limit)
        return [_session(row) for row in await self._db.fetch(sql, *w.params)]
