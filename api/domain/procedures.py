"""What a referral's performer delivered (Gravity: the Procedure a light recipient records,
referenced from the Task's output): peer services under HCPCS H0038 or a SNOMED procedure.

See https://hl7.org/fhir/us/sdoh-clinicalcare/referral_workflow.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.errors import Invalid, InvalidDetail
from api.domain.events import DomainEvent
from api.domain.referrals import Coding, Referral, ReferralStatus
from api.domain.sessions import MINUTES_PER_UNIT, PEER_SERVICES_HCPCS, Attendance, PeerSession
from api.domain.verbatim import Verbatim, nothing_kept

HCPCS_SYSTEM = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
SNOMED_SYSTEM = "http://snomed.info/sct"
MAX_UNITS = 10_000
# A referral is worked (in-progress) or done (completed) when its performer records deliveries.
RECORDABLE_STATUSES = frozenset({ReferralStatus.IN_PROGRESS, ReferralStatus.COMPLETED})


class ProcedureStatus(StrEnum):
    """The FHIR Procedure.status values a delivery takes here."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    NOT_DONE = "not-done"


@dataclass(frozen=True)
class Procedure:
    id: UUID
    referral_id: UUID
    patient_id: UUID
    performer_organization_id: UUID
    supporter_id: UUID | None
    status: ProcedureStatus
    codes: tuple[Coding, ...]
    categories: tuple[Coding, ...]  # every coding of the category, for search
    performed_start: datetime | None
    performed_end: datetime | None
    units: int | None  # billed 15-minute units
    part2: bool  # inherited from the referral (42 CFR Part 2)
    version: int
    created_at: datetime
    updated_at: datetime
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent

    def event(self, event_type: str, referral: Referral) -> DomainEvent:
        """What happened to this delivery, announced to both parties of its referral (ids and
        codes only)."""
        return DomainEvent(
            event_type,
            "Procedure",
            self.id,
            (referral.requester_organization_id, referral.performer_organization_id),
            {"referralId": str(referral.id), "status": self.status.value},
        )


def _code_problem(coding: Coding) -> str | None:
    if coding.system == HCPCS_SYSTEM:
        return None if coding.code == PEER_SERVICES_HCPCS else "the HCPCS code is H0038"
    if coding.system == SNOMED_SYSTEM:
        return None if coding.code.isdigit() and 6 <= len(coding.code) <= 18 else "not a SNOMED id"
    return "use HCPCS H0038 or a SNOMED CT procedure"


def check_delivery(
    *,
    status: ProcedureStatus,
    codes: Sequence[Coding],
    performed_start: datetime | None,
    performed_end: datetime | None,
    units: int | None,
    duration_stated: bool = True,
) -> None:
    """Refuse a delivery record that cannot be true or billed; fields as the service names them.

    Without a stated duration (a moment, or a period given to the day) the billed units are not
    held against the period."""
    problems = [
        InvalidDetail(f"codes[{index}]", problem)
        for index, coding in enumerate(codes)
        if (problem := _code_problem(coding)) is not None
    ]
    if not codes:
        problems.append(InvalidDetail("codes", "name the service: HCPCS H0038 or SNOMED CT"))
    period_ok = duration_stated
    if performed_end is not None and performed_start is None:
        problems.append(InvalidDetail("performedStart", "a period with an end needs a start"))
        period_ok = False
    if performed_start and performed_end and performed_end < performed_start:
        problems.append(InvalidDetail("performedEnd", "must not be before the start"))
        period_ok = False
    if status is ProcedureStatus.COMPLETED and performed_end is None and performed_start:
        problems.append(InvalidDetail("performedEnd", "a completed delivery has ended"))
    if units is not None:
        if not 0 <= units <= MAX_UNITS:
            problems.append(InvalidDetail("units", f"must be between 0 and {MAX_UNITS}"))
        elif status is ProcedureStatus.NOT_DONE and units:
            problems.append(InvalidDetail("units", "nothing is billed for a delivery not done"))
        elif period_ok and performed_start and performed_end:
            minutes = (performed_end - performed_start).total_seconds() / 60
            if units * MINUTES_PER_UNIT > minutes:
                problems.append(
                    InvalidDetail("units", "more 15-minute units than the performed period holds")
                )
    if problems:
        raise Invalid(problems)


@dataclass(frozen=True)
class Delivered:
    """What the attendance recorded for a referral adds up to (defaults for a Procedure)."""

    units: int
    start: datetime | None
    end: datetime | None


def delivered(
    referral_id: UUID, attendance: Sequence[Attendance], sessions: Sequence[PeerSession]
) -> Delivered:
    """Billed units of the referral's attendance, and the span of the sessions attended."""
    mine = [a for a in attendance if a.referral_id == referral_id and a.billing.units > 0]
    attended = {a.session_id for a in mine}
    spans = [(s.starts_at, s.ends_at) for s in sessions if s.id in attended]
    return Delivered(
        sum(a.billing.units for a in mine),
        min((start for start, _ in spans), default=None),
        max((end for _, end in spans), default=None),
    )
