"""Program sessions and per-participant attendance, with the billable facts payers ask for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.errors import Invalid
from api.domain.programs import DeliveryMode

PEER_SERVICES_HCPCS = "H0038"  # Self-help/peer services, per 15 minutes
GROUP_MODIFIER = "HQ"
SUBSTANCE_USE_MODIFIER = "HF"
MINUTES_PER_UNIT = 15


class SessionFormat(StrEnum):
    GROUP = "group"
    ONE_ON_ONE = "one_on_one"


class AttendanceStatus(StrEnum):
    ATTENDED = "attended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PeerSession:
    id: UUID
    program_id: UUID
    organization_id: UUID
    format: SessionFormat
    delivery_mode: DeliveryMode
    starts_at: datetime
    ends_at: datetime
    facilitator_ids: tuple[UUID, ...]
    capacity: int | None
    topic: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def minutes(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds() // 60)


def check_session_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise Invalid("a session must end after it starts", field="endsAt")
    if (ends_at - starts_at).total_seconds() > 12 * 3600:
        raise Invalid("a session cannot last more than 12 hours", field="endsAt")


@dataclass(frozen=True)
class Billing:
    units: int
    hcpcs_code: str
    modifiers: tuple[str, ...]


def billing_for(session: PeerSession, status: AttendanceStatus, substance_use: bool) -> Billing:
    """H0038 units for an attended session: whole 15-minute units, HQ for groups, HF for SUD."""
    units = session.minutes // MINUTES_PER_UNIT if status is AttendanceStatus.ATTENDED else 0
    modifiers = tuple(
        modifier
        for modifier, applies in (
            (GROUP_MODIFIER, session.format is SessionFormat.GROUP),
            (SUBSTANCE_USE_MODIFIER, substance_use),
        )
        if applies
    )
    return Billing(units, PEER_SERVICES_HCPCS, modifiers)


@dataclass(frozen=True)
class Attendance:
    id: UUID
    session_id: UUID
    patient_id: UUID
    organization_id: UUID
    referral_id: UUID | None
    status: AttendanceStatus
    billing: Billing
    substance_use: bool
    note: str | None
    version: int
    created_at: datetime
    updated_at: datetime
