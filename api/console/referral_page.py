"""One referral, as the signed-in person may see it: facts, consent status, history, and the
forms of what their role may do next. Every value comes from the services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from starlette.responses import Response

from api.console.referral_lists import patient_names, supporter_names
from api.console.web import Staff, staff_page
from api.domain.consents import Consent
from api.domain.errors import DomainError, NotFound
from api.domain.organizations import OrganizationKind
from api.domain.outcomes import INSTRUMENTS, Instrument
from api.domain.programs import DeliveryMode
from api.domain.referrals import OPEN_STATUSES, Referral, ReferralStatus
from api.domain.sessions import AttendanceStatus, PeerSession, SessionFormat
from api.domain.staff import StaffRole
from api.domain.supporters import PeerSupporter
from api.services import consents, organizations, programs, sessions, supporters
from api.services.filters import SupporterFilter
from api.services.pagination import PageRequest
from api.services.policy import utcnow
from api.services.referrals import ReferralView, get_referral, referral_histories

_WORKING_ROLES = (StaffRole.COORDINATOR, StaffRole.SUPPORTER, StaffRole.CLINIC)


def referral_id_of(staff: Staff) -> UUID:
    try:
        return UUID(staff.request.path_params["referral_id"])
    except ValueError:
        raise NotFound("Referral", staff.request.path_params["referral_id"]) from None


@dataclass(frozen=True)
class SupporterChoice:
    supporter: PeerSupporter
    certified: bool
    open_caseload: int | None

    @property
    def full(self) -> bool:
        return self.open_caseload is not None and self.open_caseload >= self.supporter.max_caseload


async def _supporter_choices(staff: Staff) -> list[SupporterChoice]:
    page = await supporters.list_supporters(
        staff.uow(),
        staff.principal,
        SupporterFilter(organization_id=staff.principal.organization_id, active=True),
        PageRequest(first=100),
    )
    found = sorted(page.items, key=lambda s: s.display_name)
    caseloads = await supporters.open_caseloads(staff.uow(), staff.principal, [s.id for s in found])
    today = utcnow().date()
    return [
        SupporterChoice(s, s.has_valid_certification(today), n)
        for s, n in zip(found, caseloads, strict=True)
    ]


async def _clinics(staff: Staff) -> list[Any]:
    listed = await organizations.list_organizations(staff.uow(), staff.principal, limit=200)
    return [o for o in listed if o.kind is OrganizationKind.CLINIC]


async def _consents(staff: Staff, referral: Referral) -> list[Consent] | None:
    try:
        found = await consents.list_consents(staff.uow(), staff.principal, referral.patient_id)
    except DomainError:
        return None
    return [
        c
        for c in found
        if staff.principal.organization_id
        in (c.recipient_organization_id, c.recorded_by_organization_id)
    ]


async def _program_sessions(staff: Staff, referral: Referral) -> list[PeerSession]:
    if referral.program_id is None:
        return []
    (found,) = await sessions.sessions_of_programs(
        staff.uow(), staff.principal, [referral.program_id], limit=20
    )
    return found


async def render_referral(
    staff: Staff,
    referral_id: UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
    safety: bool = False,
) -> Response:
    view: ReferralView = await get_referral(staff.uow(), staff.principal, referral_id)
    referral = view.referral
    names = await patient_names(staff, [referral.patient_id])
    (history,) = await referral_histories(staff.uow(), staff.principal, [referral.id])
    assigned = await supporter_names(
        staff, [referral.assigned_supporter_id] if referral.assigned_supporter_id else []
    )
    program_name = None
    if referral.program_id is not None:
        (program,) = await programs.get_programs(
            staff.uow(), staff.principal, [referral.program_id]
        )
        program_name = program.name if program is not None else None
    working = referral.performer_organization_id == staff.principal.organization_id
    values: dict[str, Any] = {
        "view": view,
        "referral": referral,
        "patient_name": names.get(referral.patient_id) if view.withheld is None else None,
        "history": history if isinstance(history, list) else [],
        "consents": await _consents(staff, referral),
        "supporter_name": assigned.get(referral.assigned_supporter_id)
        if referral.assigned_supporter_id
        else None,
        "program_name": program_name,
        "working": working,
        "is_open": referral.status in OPEN_STATUSES,
        "is_requested": referral.status is ReferralStatus.REQUESTED,
        "notice": notice,
        "error": error,
        "safety": safety,
        "now": utcnow(),
    }
    if working and staff.role is StaffRole.COORDINATOR:
        values["supporter_choices"] = await _supporter_choices(staff)
        values["clinics"] = await _clinics(staff)
    if working and staff.role is StaffRole.SUPPORTER:
        values["sessions"] = await _program_sessions(staff, referral)
        values["formats"] = list(SessionFormat)
        values["delivery_modes"] = list(DeliveryMode)
        values["attendance_statuses"] = list(AttendanceStatus)
        values["instruments"] = {
            i.value: INSTRUMENTS[i] for i in (Instrument.PHQ9, Instrument.GAD7)
        }
        values["on_call"] = await _on_call(staff)
    return staff.page("referral.html", status_code, **values)


async def _on_call(staff: Staff) -> str | None:
    """Whom the crisis protocol names besides 988: the supporter's clinical supervisor."""
    if staff.principal.caseload_of is None:
        return None
    (me,) = await supporters.get_supporters(
        staff.uow(), staff.principal, [staff.principal.caseload_of]
    )
    return me.supervisor_name if me is not None else None


@staff_page(*_WORKING_ROLES)
async def referral_page(staff: Staff) -> Response:
    done = staff.request.query_params.get("done")
    return await render_referral(staff, referral_id_of(staff), notice=_NOTICES.get(done or ""))


# Notices after a change (the URL says which kind of change, never any data).
_NOTICES = {
    "accept": "Referral accepted.",
    "reject": "Referral rejected.",
    "start": "Referral started.",
    "complete": "Referral completed.",
    "fail": "Referral closed.",
    "assign": "Supporter assigned.",
    "escalate": "Referral to the clinic sent.",
    "handoff": "Warm handoff sent to the referring clinic.",
    "revoke": "Sharing with your organization revoked.",
    "session": "Session scheduled.",
    "attendance": "Attendance recorded.",
    "measure": "Measure recorded.",
}
