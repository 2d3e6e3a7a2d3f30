"""Care-record mutations: sessions, attendance and outcome measures."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.outcomes import Instrument
from api.domain.programs import DeliveryMode
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.schema.attendance import Attendance
from api.schema.context import Info
from api.schema.ids import parse_id, parse_ids, parse_optional_id
from api.schema.outcome import OutcomeMeasure
from api.schema.session import Session
from api.services import outcomes, sessions
from api.services.outcomes import RecordOutcomeMeasure
from api.services.sessions import RecordAttendance, RecordSession


@strawberry.input(description="A group or one-on-one session of one of your programs.")
class RecordSessionInput:
    program_id: strawberry.ID
    format: SessionFormat
    delivery_mode: DeliveryMode
    starts_at: datetime
    ends_at: datetime
    facilitator_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    capacity: int | None = None
    topic: str | None = None
    idempotency_key: str | None = None

    def to_command(self) -> RecordSession:
        return RecordSession(
            program_id=parse_id(self.program_id, "input.programId"),
            format=self.format,
            delivery_mode=self.delivery_mode,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            facilitator_ids=parse_ids(self.facilitator_ids, "input.facilitatorIds"),
            capacity=self.capacity,
            topic=self.topic,
        )


@strawberry.input(description="Record (or correct) one participant's attendance at a session.")
class RecordAttendanceInput:
    session_id: strawberry.ID
    patient_id: strawberry.ID
    status: AttendanceStatus
    referral_id: strawberry.ID | None = None
    note: str | None = None
    idempotency_key: str | None = None

    def to_command(self) -> RecordAttendance:
        return RecordAttendance(
            session_id=parse_id(self.session_id, "input.sessionId"),
            patient_id=parse_id(self.patient_id, "input.patientId"),
            status=self.status,
            referral_id=parse_optional_id(self.referral_id, "input.referralId"),
            note=self.note,
        )


@strawberry.input(description="An administered instrument (PHQ-9, GAD-7, ...) and its answers.")
class RecordOutcomeMeasureInput:
    patient_id: strawberry.ID
    instrument: Instrument
    item_answers: list[int]
    administered_at: datetime | None = None
    referral_id: strawberry.ID | None = None
    idempotency_key: str | None = None

    def to_command(self) -> RecordOutcomeMeasure:
        return RecordOutcomeMeasure(
            patient_id=parse_id(self.patient_id, "input.patientId"),
            instrument=self.instrument,
            item_answers=tuple(self.item_answers),
            administered_at=self.administered_at,
            referral_id=parse_optional_id(self.referral_id, "input.referralId"),
        )


@strawberry.type
class CareMutations:
    @strawberry.mutation(description="Record a session of one of your programs.")
    async def record_session(self, info: Info, input: RecordSessionInput) -> Session | None:
        session = await sessions.record_session(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return Session.from_domain(session)

    @strawberry.mutation(description="Record attendance with its H0038 billing units.")
    async def record_attendance(
        self, info: Info, input: RecordAttendanceInput
    ) -> Attendance | None:
        attendance = await sessions.record_attendance(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return Attendance.from_domain(attendance)

    @strawberry.mutation(description="Record an outcome measure; PHQ-9 item 9 > 0 raises a signal.")
    async def record_outcome_measure(
        self, info: Info, input: RecordOutcomeMeasureInput
    ) -> OutcomeMeasure | None:
        measure = await outcomes.record_outcome_measure(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return OutcomeMeasure.from_domain(measure)
