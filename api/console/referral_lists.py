"""The lists of referrals each role works from: the coordinator's inbox, a supporter's
caseload, a clinic's sent referrals. Patient names only where the services disclose them."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from starlette.responses import Response

from api.console.web import Staff, staff_page
from api.domain.errors import Invalid
from api.domain.patients import Patient
from api.domain.referrals import OPEN_STATUSES, ReferralStatus
from api.domain.staff import StaffRole
from api.services import patients, supporters, timeliness
from api.services.filters import ReferralBox, ReferralFilter
from api.services.pagination import PageRequest
from api.services.referrals import ReferralView, list_referrals

PAGE_SIZE = 50
_STATUS_CHOICES = ("open", "requested", "all")


@dataclass(frozen=True)
class Row:
    view: ReferralView
    patient_name: str | None  # None: consent does not cover the patient's demographics
    supporter_name: str | None
    overdue: bool  # still requested past its first-contact target


async def patient_names(staff: Staff, ids: list[UUID]) -> dict[UUID, str | None]:
    """Each patient's name as the services disclose it to the signed-in person (audited)."""
    unique = list(dict.fromkeys(ids))
    found = await patients.get_patients(staff.uow(), staff.principal, unique) if unique else []
    return {
        pid: f"{p.given_name} {p.family_name}" if isinstance(p, Patient) else None
        for pid, p in zip(unique, found, strict=True)
    }


async def supporter_names(staff: Staff, ids: list[UUID]) -> dict[UUID, str]:
    unique = list(dict.fromkeys(ids))
    if not unique or not any(staff.role is r for r in (StaffRole.COORDINATOR, StaffRole.SUPPORTER)):
        return {}
    found = await supporters.get_supporters(staff.uow(), staff.principal, unique)
    return {s.id: s.display_name for s in found if s is not None}


def _statuses(choice: str) -> frozenset[ReferralStatus]:
    if choice == "open":
        return frozenset({ReferralStatus.REQUESTED, *OPEN_STATUSES})
    if choice == "requested":
        return frozenset({ReferralStatus.REQUESTED})
    return frozenset()


async def _list_page(staff: Staff, box: ReferralBox, template: str, title: str) -> Response:
    choice = staff.request.query_params.get("status", "open")
    if choice not in _STATUS_CHOICES:
        raise Invalid(f"must be one of {', '.join(_STATUS_CHOICES)}", field="status")
    overdue_only = staff.request.query_params.get("overdue", "")
    if overdue_only not in ("", "1"):
        raise Invalid("must be 1 or left out", field="overdue")
    page = await list_referrals(
        staff.uow(),
        staff.principal,
        ReferralFilter(
            box=box, statuses=_statuses(choice), overdue=True if overdue_only else None
        ),
        PageRequest.of(PAGE_SIZE, staff.request.query_params.get("after")),
    )
    overdue = await timeliness.overdue_among(
        staff.uow(), staff.principal, [v.referral.id for v in page.items]
    )
    names = await patient_names(staff, [v.referral.patient_id for v in page.items])
    assigned = await supporter_names(
        staff,
        [v.referral.assigned_supporter_id for v in page.items if v.referral.assigned_supporter_id],
    )
    rows = [
        Row(
            v,
            names.get(v.referral.patient_id) if v.withheld is None else None,
            assigned.get(v.referral.assigned_supporter_id)
            if v.referral.assigned_supporter_id
            else None,
            v.referral.id in overdue,
        )
        for v in page.items
    ]
    return staff.page(
        template,
        title=title,
        rows=rows,
        status_choice=choice,
        status_choices=_STATUS_CHOICES,
        overdue_only=bool(overdue_only),
        next_cursor=page.end_cursor if page.has_next_page else None,
    )


@staff_page(StaffRole.COORDINATOR)
async def inbox(staff: Staff) -> Response:
    return await _list_page(staff, ReferralBox.INBOX, "referrals.html", "Inbox")


@staff_page(StaffRole.SUPPORTER)
async def caseload(staff: Staff) -> Response:
    return await _list_page(staff, ReferralBox.INBOX, "referrals.html", "My caseload")


@staff_page(StaffRole.CLINIC)
async def sent(staff: Staff) -> Response:
    return await _list_page(staff, ReferralBox.OUTBOX, "referrals.html", "Sent referrals")
