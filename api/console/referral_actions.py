"""What a coordinator or supporter does to a referral: each form posts to one use case, then
the page is shown again (POST, redirect, GET), or with the refusal the service gave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from api.console.referral_page import referral_id_of, render_referral
from api.console.web import Staff, redirect, staff_page
from api.domain.errors import DomainError, Invalid, NotFound
from api.domain.outcomes import INSTRUMENTS, Instrument
from api.domain.programs import DeliveryMode
from api.domain.referrals import Direction, Priority, Transition
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.domain.staff import StaffRole
from api.services import consent_revocations, outcomes, referrals, sessions

E = TypeVar("E", bound=StrEnum)
Action = Callable[[Staff, UUID], Awaitable[Response | None]]
_WARM_HANDOFF_REASON = (
    "Warm handoff from peer support: the participant answered PHQ-9 item 9 above 'not at all'"
)


def _uuid(staff: Staff, name: str) -> UUID:
    try:
        return UUID(staff.field(name))
    except ValueError:
        raise Invalid("choose one from the list", field=name) from None


def _int(staff: Staff, name: str) -> int:
    try:
        return int(staff.field(name))
    except ValueError:
        raise Invalid("must be a whole number", field=name) from None


def _choice(staff: Staff, name: str, kind: type[E]) -> E:
    try:
        return kind(staff.field(name))
    except ValueError:
        raise Invalid("choose one from the list", field=name) from None


def _version(staff: Staff) -> int | None:
    return _int(staff, "version") if staff.field("version") else None


def _done(kind: str) -> Callable[[Action], Callable[[Staff], Awaitable[Response]]]:
    """Run an action on the referral in the URL; on success show it again with a notice of
    this kind, on a refusal show it with the refusal (a referral not theirs: not found)."""

    def wrap(action: Action) -> Callable[[Staff], Awaitable[Response]]:
        async def endpoint(staff: Staff) -> Response:
            referral_id = referral_id_of(staff)
            try:
                shown = await action(staff, referral_id)
            except NotFound:
                raise
            except DomainError as error:
                return await render_referral(
                    staff, referral_id, status_code=_status(error), error=error.message
                )
            return shown or redirect(f"/console/referrals/{referral_id}?done={kind}")

        endpoint.__name__ = action.__name__
        return endpoint

    return wrap


def _status(error: DomainError) -> int:
    return {"FORBIDDEN": 403, "CONFLICT": 409, "CONSENT_REQUIRED": 403, "CONSENT_REVOKED": 403}.get(
        error.code, 422
    )


def _transition(
    transition: Transition, *roles: StaffRole
) -> Callable[[Request], Awaitable[Response]]:
    @staff_page(*roles)
    @_done(transition.value)
    async def move(staff: Staff, referral_id: UUID) -> None:
        await referrals.transition_referral(
            staff.uow(),
            staff.principal,
            referral_id,
            transition,
            reason=staff.field("reason") or None,
            expected_version=_version(staff),
        )

    return move


accept = _transition(Transition.ACCEPT, StaffRole.COORDINATOR)
reject = _transition(Transition.REJECT, StaffRole.COORDINATOR)
start = _transition(Transition.START, StaffRole.SUPPORTER, StaffRole.COORDINATOR)
complete = _transition(Transition.COMPLETE, StaffRole.SUPPORTER, StaffRole.COORDINATOR)
fail = _transition(Transition.FAIL, StaffRole.SUPPORTER, StaffRole.COORDINATOR)


@staff_page(StaffRole.COORDINATOR)
@_done("assign")
async def assign(staff: Staff, referral_id: UUID) -> None:
    await referrals.assign_supporter(
        staff.uow(),
        staff.principal,
        referral_id,
        _uuid(staff, "supporter_id"),
        expected_version=_version(staff),
    )


@staff_page(StaffRole.COORDINATOR)
@_done("escalate")
async def escalate(staff: Staff, referral_id: UUID) -> None:
    await referrals.escalate_referral(
        staff.uow(),
        staff.principal,
        referrals.EscalateReferral(
            referral_id=referral_id,
            clinic_organization_id=_uuid(staff, "clinic_id"),
            reason_text=staff.field("reason") or None,
        ),
    )


@staff_page(StaffRole.SUPPORTER)
@_done("handoff")
async def handoff(staff: Staff, referral_id: UUID) -> None:
    """The warm handoff: one click refers the participant back to the clinic that sent them."""
    view = await referrals.get_referral(staff.uow(), staff.principal, referral_id)
    if view.referral.direction is not Direction.CLINIC_TO_PEER:
        raise Invalid("this referral did not come from a clinic", field="referral")
    await referrals.escalate_referral(
        staff.uow(),
        staff.principal,
        referrals.EscalateReferral(
            referral_id=referral_id,
            clinic_organization_id=view.referral.requester_organization_id,
            priority=Priority.STAT,
            reason_text=_WARM_HANDOFF_REASON,
        ),
    )


@staff_page(StaffRole.COORDINATOR)
@_done("revoke")
async def revoke(staff: Staff, referral_id: UUID) -> None:
    view = await referrals.get_referral(staff.uow(), staff.principal, referral_id)
    await consent_revocations.revoke_consents(
        staff.uow(),
        staff.principal,
        consent_revocations.RevokeConsents(
            patient_id=view.referral.patient_id,
            recipient_organization_id=staff.principal.organization_id,
            reason=staff.field("reason") or None,
        ),
    )


def _starts_at(staff: Staff) -> datetime:
    try:
        return datetime.fromisoformat(staff.field("starts_at")).replace(tzinfo=UTC)
    except ValueError:
        raise Invalid("must be a date and time", field="starts_at") from None


@staff_page(StaffRole.SUPPORTER)
@_done("session")
async def schedule_session(staff: Staff, referral_id: UUID) -> None:
    view = await referrals.get_referral(staff.uow(), staff.principal, referral_id)
    if view.referral.program_id is None:
        raise Invalid("this referral names no program to hold the session in", field="program")
    starts_at = _starts_at(staff)
    minutes = _int(staff, "minutes")
    if not 15 <= minutes <= 480:
        raise Invalid("must be between 15 and 480", field="minutes")
    await sessions.record_session(
        staff.uow(),
        staff.principal,
        sessions.RecordSession(
            program_id=view.referral.program_id,
            format=_choice(staff, "format", SessionFormat),
            delivery_mode=_choice(staff, "delivery_mode", DeliveryMode),
            starts_at=starts_at,
            ends_at=starts_at + timedelta(minutes=minutes),
            facilitator_ids=(staff.principal.caseload_of,) if staff.principal.caseload_of else (),
            topic=staff.field("topic") or None,
        ),
    )


@staff_page(StaffRole.SUPPORTER)
@_done("attendance")
async def attendance(staff: Staff, referral_id: UUID) -> None:
    view = await referrals.get_referral(staff.uow(), staff.principal, referral_id)
    await sessions.record_attendance(
        staff.uow(),
        staff.principal,
        sessions.RecordAttendance(
            session_id=_uuid(staff, "session_id"),
            patient_id=view.referral.patient_id,
            status=_choice(staff, "status", AttendanceStatus),
            referral_id=referral_id,
            note=staff.field("note") or None,
        ),
    )


@staff_page(StaffRole.SUPPORTER)
@_done("measure")
async def measure(staff: Staff, referral_id: UUID) -> Response | None:
    instrument = _choice(staff, "instrument", Instrument)
    if instrument not in (Instrument.PHQ9, Instrument.GAD7):
        raise Invalid("choose PHQ-9 or GAD-7", field="instrument")
    spec = INSTRUMENTS[instrument]
    answers = tuple(_int(staff, f"item_{n}") for n in range(1, len(spec.item_codes) + 1))
    view = await referrals.get_referral(staff.uow(), staff.principal, referral_id)
    recorded = await outcomes.record_outcome_measure(
        staff.uow(),
        staff.principal,
        outcomes.RecordOutcomeMeasure(
            patient_id=view.referral.patient_id,
            instrument=instrument,
            item_answers=answers,
            referral_id=referral_id,
        ),
    )
    if recorded.safety_signal:
        # Shown at once, not through a redirect: the address never tells what was answered.
        return await render_referral(
            staff, referral_id, notice=f"{spec.title} recorded.", safety=True
        )
    return None
