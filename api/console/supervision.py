"""The supervisor's page: supporters with their certifications (expiring within 30, 60 or 90
days marked), caseloads, and each program's de-identified metrics (small cells suppressed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from starlette.responses import Response

from api.console.web import Staff, staff_page
from api.domain.programs import PeerProgram
from api.domain.staff import StaffRole
from api.domain.supporters import Certification, PeerSupporter
from api.services import metrics, programs, supporters
from api.services.filters import ProgramFilter, SupporterFilter
from api.services.metrics import ProgramMetrics
from api.services.pagination import PageRequest
from api.services.policy import utcnow

_WINDOWS = (30, 60, 90)
_METRICS_PERIOD = timedelta(days=90)


@dataclass(frozen=True)
class CertificationRow:
    certification: Certification
    expires_within: int | None  # the smallest window it expires in; None: later or never
    expired: bool


@dataclass(frozen=True)
class SupporterRow:
    supporter: PeerSupporter
    certifications: list[CertificationRow]
    open_caseload: int | None


def _certification_row(cert: Certification, today: date) -> CertificationRow:
    expires = cert.expires_on
    expired = expires is not None and expires < today
    within = next(
        (
            days
            for days in _WINDOWS
            if expires is not None and not expired and expires <= today + timedelta(days=days)
        ),
        None,
    )
    return CertificationRow(cert, within, expired)


@staff_page(StaffRole.SUPERVISOR)
async def supervision(staff: Staff) -> Response:
    own = staff.principal.organization_id
    page = await supporters.list_supporters(
        staff.uow(), staff.principal, SupporterFilter(organization_id=own), PageRequest(first=100)
    )
    found = sorted(page.items, key=lambda s: s.display_name)
    caseloads = await supporters.open_caseloads(staff.uow(), staff.principal, [s.id for s in found])
    today = utcnow().date()
    rows = [
        SupporterRow(s, [_certification_row(c, today) for c in s.certifications], n)
        for s, n in zip(found, caseloads, strict=True)
    ]
    listed = await programs.list_programs(
        staff.uow(), staff.principal, ProgramFilter(organization_id=own), PageRequest(first=100)
    )
    until = utcnow()
    program_metrics: list[tuple[PeerProgram, ProgramMetrics]] = [
        (
            p,
            await metrics.program_metrics(
                staff.uow(), staff.principal, p.id, until - _METRICS_PERIOD, until
            ),
        )
        for p in sorted(listed.items, key=lambda p: p.name)
    ]
    return staff.page(
        "supervision.html",
        rows=rows,
        windows=_WINDOWS,
        program_metrics=program_metrics,
        period_days=_METRICS_PERIOD.days,
    )
