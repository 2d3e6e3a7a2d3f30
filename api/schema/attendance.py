"""Attendance: one participant at one session, with the billable facts (HCPCS H0038 units)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.domain import sessions as domain
from api.domain.sessions import AttendanceStatus
from api.integrations.fhir.resources.sessions import to_fhir_attendance_encounter
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import to_id
from api.schema.node import Node
from api.schema.patient import Patient, load_patient
from api.schema.referral import Referral, load_referral
from api.schema.session import Session, load_session


@strawberry.type(description="Billable facts: 15-minute units of HCPCS H0038 with modifiers.")
class Billing:
    units: int
    hcpcs_code: str
    modifiers: list[str]


@strawberry.type(description="A participant's attendance at a session (FHIR Encounter).")
class Attendance(Node):
    id: strawberry.ID
    patient_id: strawberry.ID
    status: AttendanceStatus
    billing: Billing
    substance_use: bool = strawberry.field(description="42 CFR Part 2 data (HF modifier).")
    note: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Attendance]

    @classmethod
    def from_domain(cls, attendance: domain.Attendance) -> Attendance:
        billing = attendance.billing
        return cls(
            id=to_id(attendance.id),
            patient_id=to_id(attendance.patient_id),
            status=attendance.status,
            billing=Billing(
                units=billing.units,
                hcpcs_code=billing.hcpcs_code,
                modifiers=list(billing.modifiers),
            ),
            substance_use=attendance.substance_use,
            note=attendance.note,
            version=attendance.version,
            created_at=attendance.created_at,
            updated_at=attendance.updated_at,
            record=attendance,
        )

    @strawberry.field(description=FHIR_DESCRIPTION + " Encounter of this attendee.")
    async def fhir(self, info: Info) -> JSON | None:
        session = await info.context.loaders.sessions.load(self.record.session_id)
        return as_json(to_fhir_attendance_encounter(self.record, session))

    @strawberry.field
    async def session(self, info: Info) -> Session | None:
        return await load_session(info, self.record.session_id)

    @strawberry.field(description="The participant (null with an error when not disclosed).")
    async def patient(self, info: Info) -> Patient | None:
        return await load_patient(info, self.record.patient_id)

    @strawberry.field
    async def referral(self, info: Info) -> Referral | None:
        referral_id = self.record.referral_id
        return None if referral_id is None else await load_referral(info, referral_id)
