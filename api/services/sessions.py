"""Program sessions and attendance, with H0038 billing facts; attendance is PHI."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from api.domain import text
from api.domain.audit import AuditAction
from api.domain.consents import DataClass
from api.domain.errors import DomainError, Invalid, NotFound
from api.domain.events import DomainEvent
from api.domain.principal import Principal
from api.domain.programs import DeliveryMode
from api.domain.sessions import (
    Attendance,
    AttendanceStatus,
    PeerSession,
    SessionFormat,
    billing_for,
    check_session_times,
)
from api.domain.text import check_texts
from api.services import idempotency
from api.services.care_records import patient_in_care, referral_of
from api.services.policy import (
    Capability,
    Disclosure,
    audit,
    disclose_each,
    disclosed,
    hidden_beyond_caseload,
    listed_within_caseload,
    require,
    require_organization,
    utcnow,
)
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class RecordSession:
    program_id: UUID
    format: SessionFormat
    delivery_mode: DeliveryMode
    starts_at: datetime
    ends_at: datetime
    facilitator_ids: tuple[UUID, ...] = ()
    capacity: int | None = None
    topic: str | None = None


@dataclass(frozen=True)
class RecordAttendance:
    session_id: UUID
    patient_id: UUID
    status: AttendanceStatus
    referral_id: UUID | None = None
    note: str | None = None


async def record_session(
    uow: UnitOfWork,
    principal: Principal,
    command: RecordSession,
    *,
    idempotency_key: str | None = None,
) -> PeerSession:
    """Record a group or one-on-one session of one of the caller's programs."""
    require(principal, Capability.RECORD_SESSIONS)
    check_session_times(command.starts_at, command.ends_at)
    check_texts([("topic", command.topic, text.REASON)])
    if command.capacity is not None and command.capacity <= 0:
        raise Invalid("must be positive", field="capacity")
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "recordSession",
            command,
            load=uow.sessions.get_many,
            resource_type="Session",
            write=lambda: _record(uow, principal, command),
        )
        await uow.commit()
    return written


async def _record(uow: UnitOfWork, principal: Principal, command: RecordSession) -> PeerSession:
    (program,) = await uow.programs.get_many([command.program_id])
    if program is None:
        raise NotFound("PeerProgram", command.program_id)
    require_organization(principal, program.organization_id, "this program")
    facilitators = await uow.supporters.get_many(command.facilitator_ids)
    for index, (facilitator_id, facilitator) in enumerate(
        zip(command.facilitator_ids, facilitators, strict=True)
    ):
        if facilitator is None or facilitator.organization_id != program.organization_id:
            raise Invalid(
                f"{facilitator_id} is not a supporter of this organization",
                field=f"facilitatorIds[{index}]",
            )
    now = utcnow()
    session = await uow.sessions.add(
        PeerSession(
            id=uuid.uuid4(),
            program_id=program.id,
            organization_id=program.organization_id,
            format=command.format,
            delivery_mode=command.delivery_mode,
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            facilitator_ids=command.facilitator_ids,
            capacity=command.capacity,
            topic=command.topic,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )
    uow.collect(
        DomainEvent("SessionRecorded", "Session", session.id, (session.organization_id,), {})
    )
    return session


async def record_attendance(
    uow: UnitOfWork,
    principal: Principal,
    command: RecordAttendance,
    *,
    idempotency_key: str | None = None,
) -> Attendance:
    """Record (or correct) one participant's attendance at a session, with its billing units."""
    require(principal, Capability.RECORD_SESSIONS)
    check_texts([("note", command.note, text.REASON)])
    async with uow:
        (session,) = await uow.sessions.get_many([command.session_id])
        if session is None:
            raise NotFound("Session", command.session_id)
        require_organization(principal, session.organization_id, "this session")
        attendance = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "recordAttendance",
            command,
            load=uow.sessions.attendance_by_ids,
            resource_type="Encounter",
            write=lambda: _attend(uow, principal, command, session),
            patient_of=lambda attendance: attendance.patient_id,
        )
        await uow.commit()
    return attendance


async def _attend(
    uow: UnitOfWork, principal: Principal, command: RecordAttendance, session: PeerSession
) -> Attendance:
    patient = await patient_in_care(
        uow,
        principal,
        command.patient_id,
        operation="recordAttendance",
        resource_type="Encounter",
    )
    referral = await referral_of(uow, principal, patient, command.referral_id)
    substance_use = referral is not None and referral.is_part2
    (program,) = await uow.programs.get_many([session.program_id])
    substance_use = substance_use or bool(program and program.substance_use_focus)
    now = utcnow()
    attendance = await uow.sessions.add_attendance(
        Attendance(
            id=uuid.uuid4(),
            session_id=session.id,
            patient_id=patient.id,
            organization_id=session.organization_id,
            referral_id=command.referral_id,
            status=command.status,
            billing=billing_for(session, command.status, substance_use),
            substance_use=substance_use,
            note=(command.note or "").strip() or None,
            version=1,
            created_at=now,
            updated_at=now,
        )
    )
    uow.record(
        audit(
            principal,
            # A second record for the same session and participant corrects the first.
            action=AuditAction.CREATE if attendance.version == 1 else AuditAction.UPDATE,
            operation="recordAttendance",
            resource_type="Encounter",
            resource_id=attendance.id,
            patient_id=patient.id,
        )
    )
    uow.collect(
        DomainEvent(
            "AttendanceRecorded",
            "Attendance",
            attendance.id,
            (session.organization_id,),
            {"status": attendance.status.value},
        )
    )
    return attendance


async def get_sessions(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[PeerSession | None]:
    """Sessions (no patient data in them); attendees come from `attendance_for_*`."""
    require(principal, Capability.READ_SESSIONS)
    async with uow:
        return await uow.sessions.get_many(ids)


async def sessions_of_programs(
    uow: UnitOfWork, principal: Principal, program_ids: Sequence[UUID], limit: int = 100
) -> list[list[PeerSession]]:
    """Per program, its latest `limit` sessions (no patient data in them), latest first."""
    require(principal, Capability.READ_SESSIONS)
    async with uow:
        rows = await uow.sessions.for_programs(program_ids, limit)
    return [[s for s in rows if s.program_id == pid] for pid in program_ids]


def _classes(attendance: Attendance) -> frozenset[DataClass]:
    if attendance.substance_use:
        return frozenset({DataClass.SESSIONS, DataClass.SUBSTANCE_USE})
    return frozenset({DataClass.SESSIONS})


async def _visible(
    uow: UnitOfWork, principal: Principal, rows: Sequence[Attendance]
) -> list[Attendance]:
    return await disclosed(
        uow,
        principal,
        await listed_within_caseload(
            uow,
            principal,
            rows,
            patient_of=lambda a: a.patient_id,
            resource_id=lambda a: a.id,
            resource_type="Encounter",
            operation="readAttendance",
        ),
        resource_type="Encounter",
        operation="readAttendance",
        disclosure=lambda a: Disclosure(a.patient_id, a.organization_id, _classes(a)),
        resource_id=lambda a: a.id,
    )


async def get_attendance(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[Attendance | DomainError]:
    """Attendance records by id (FHIR: the attendee's Encounter), or why each may not be seen:
    the recording organization always, others under a consent naming `sessions`."""
    require(principal, Capability.READ_SESSIONS)
    async with uow:
        found = await hidden_beyond_caseload(
            uow,
            principal,
            ids,
            await uow.sessions.attendance_by_ids(ids),
            patient_of=lambda a: a.patient_id,
            resource_type="Encounter",
            operation="readAttendance",
        )
        results = await disclose_each(
            uow,
            principal,
            ids,
            found,
            resource_type="Encounter",
            operation="readAttendance",
            disclosure=lambda a: Disclosure(a.patient_id, a.organization_id, _classes(a)),
        )
        await uow.commit()
    return results


async def attendance_for_sessions(
    uow: UnitOfWork, principal: Principal, session_ids: Sequence[UUID]
) -> list[list[Attendance]]:
    """Per session, the attendance records the caller may see (recorder, or consent `sessions`)."""
    require(principal, Capability.READ_SESSIONS)
    async with uow:
        rows = await _visible(
            uow, principal, await uow.sessions.attendance_for(session_ids=session_ids)
        )
        await uow.commit()
    return [[a for a in rows if a.session_id == sid] for sid in session_ids]


async def attendance_for_patients(
    uow: UnitOfWork, principal: Principal, patient_ids: Sequence[UUID]
) -> list[list[Attendance]]:
    require(principal, Capability.READ_SESSIONS)
    async with uow:
        rows = await _visible(
            uow, principal, await uow.sessions.attendance_for(patient_ids=patient_ids)
        )
        await uow.commit()
    return [[a for a in rows if a.patient_id == pid] for pid in patient_ids]
