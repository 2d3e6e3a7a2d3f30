"""The record holder's accounting of disclosures for one patient and period (45 CFR 164.528),
and the whole trail as a feed for a SIEM.

A disclosure here is a successful read of the patient's data by an organization other than the
one that holds the patient's record; each is in the audit trail with the recipient, what was
read, the stated purpose and the consents it relied on. The accounting itself is audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

from api.domain.audit import AuditAction, AuditEvent, AuditOutcome, AuditRecord
from api.domain.errors import Forbidden, Invalid, NotFound
from api.domain.organizations import Organization
from api.domain.principal import Principal
from api.services.policy import Capability, Refusal, audit, refuse_one, require, utcnow
from api.services.repositories import UnitOfWork

_PAGE = 1_000
_OPERATION = "accountingOfDisclosures"
OPERATOR_CLIENT_ID = "peerbridge-cli"
NOT_STATED = "not stated"
UNKNOWN_ORGANIZATION = "(unknown organization)"

Page = Callable[[UnitOfWork, tuple[datetime, UUID] | None], Awaitable[list[AuditEvent]]]


@dataclass(frozen=True)
class DisclosureLine:
    """The disclosures of one day to one recipient, for one purpose, under the same consents."""

    day: date
    recipient_id: UUID
    recipient_name: str
    resource_types: tuple[str, ...]
    purpose: str
    consent_ids: tuple[UUID, ...]
    count: int
    event_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class Accounting:
    patient_id: UUID
    holder: Organization
    since: datetime
    until: datetime
    generated_at: datetime
    lines: tuple[DisclosureLine, ...]
    events: tuple[AuditEvent, ...]  # every disclosure, oldest first
    organizations: tuple[Organization, ...]  # the holder and every recipient still on file


async def accounting_of_disclosures(
    uow_factory: Callable[[], UnitOfWork],
    patient_id: UUID,
    since: datetime,
    until: datetime,
    *,
    requested_by: Principal | None = None,
    operator: str | None = None,
) -> Accounting:
    """Only the holding organization (`requested_by`) or the operator (`operator`, the CLI)."""
    if (requested_by is None) == (operator is None):
        raise ValueError("an accounting is requested by one organization or by the operator")
    if requested_by is not None:
        require(requested_by, Capability.READ_AUDIT)
    _check_period(since, until)
    async with uow_factory() as uow:
        (patient,) = await uow.patients.get_many([patient_id])
        if patient is None:
            raise NotFound("Patient", patient_id)
        holder_id = patient.managing_organization_id
        if requested_by is not None and requested_by.organization_id != holder_id:
            raise await refuse_one(
                uow,
                requested_by,
                Refusal(
                    Forbidden("only the organization holding the patient's record may account"),
                    patient_id,
                    NotFound("Patient", patient_id),
                    "AuditEvent",
                    None,
                ),
                action=AuditAction.READ,
                operation=_OPERATION,
            )
    events = [
        event
        async for event in _pages(
            uow_factory,
            lambda uow, after: uow.audit.disclosures(
                patient_id, holder_id, since, until, after, _PAGE
            ),
        )
    ]
    async with uow_factory() as uow:
        lines, organizations = await _lines(uow, events, holder_id)
        uow.record(_accounting_audit(patient_id, holder_id, requested_by, operator))
        await uow.commit()
    holder = next(org for org in organizations if org.id == holder_id)
    return Accounting(
        patient_id, holder, since, until, utcnow(), lines, tuple(events), organizations
    )


async def export_events(
    uow_factory: Callable[[], UnitOfWork], since: datetime, until: datetime
) -> AsyncIterator[AuditEvent]:
    """Every event recorded in [since, until), oldest first, a page per transaction (operator).

    A row becomes visible when its transaction commits, which may be after a later-recorded
    row's: a feed exporting window after window should overlap them and drop repeated ids.
    """
    _check_period(since, until)
    async for event in _pages(
        uow_factory, lambda uow, after: uow.audit.recorded_between(since, until, after, _PAGE)
    ):
        yield event


def _check_period(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise Invalid("instants need a time zone", field="since")
    if since >= until:
        raise Invalid("must be after the start of the period", field="until")


async def _pages(
    uow_factory: Callable[[], UnitOfWork], page: Page
) -> AsyncIterator[AuditEvent]:
    after: tuple[datetime, UUID] | None = None
    while True:
        async with uow_factory() as uow:
            found = await page(uow, after)
        for event in found:
            yield event
        if len(found) < _PAGE:
            return
        after = (found[-1].recorded_at, found[-1].id)


async def _lines(
    uow: UnitOfWork, events: list[AuditEvent], holder_id: UUID
) -> tuple[tuple[DisclosureLine, ...], tuple[Organization, ...]]:
    consent_ids = sorted({c for e in events for c in e.record.consent_ids})
    consent_purposes = {
        consent.id: sorted(p.value for p in consent.purposes)
        for consent in await uow.consents.get_many(consent_ids)
        if consent is not None
    }
    groups: dict[tuple[date, UUID, str, tuple[UUID, ...]], list[AuditEvent]] = defaultdict(list)
    for event in events:
        record = event.record
        consents = tuple(sorted(record.consent_ids))
        purpose = record.purpose or "; ".join(
            sorted({p for c in consents for p in consent_purposes.get(c, ())})
        )
        day = event.recorded_at.astimezone(UTC).date()
        groups[(day, record.organization_id, purpose or NOT_STATED, consents)].append(event)
    org_ids = sorted({holder_id, *(key[1] for key in groups)})
    organizations = {
        org.id: org for org in await uow.organizations.get_many(org_ids) if org is not None
    }
    def name(organization_id: UUID) -> str:
        found = organizations.get(organization_id)
        return found.name if found is not None else UNKNOWN_ORGANIZATION

    lines = tuple(
        DisclosureLine(
            day=day,
            recipient_id=recipient,
            recipient_name=name(recipient),
            resource_types=tuple(sorted({e.record.resource_type for e in grouped})),
            purpose=purpose,
            consent_ids=consents,
            count=len(grouped),
            event_ids=tuple(e.id for e in grouped),
        )
        for (day, recipient, purpose, consents), grouped in sorted(
            groups.items(), key=lambda item: (item[0][0], name(item[0][1]), item[0])
        )
    )
    return lines, tuple(organizations[i] for i in org_ids if i in organizations)


def _accounting_audit(
    patient_id: UUID, holder_id: UUID, requested_by: Principal | None, operator: str | None
) -> AuditRecord:
    if requested_by is not None:
        return audit(
            requested_by,
            action=AuditAction.READ,
            operation=_OPERATION,
            resource_type="AuditEvent",
            resource_id=None,
            patient_id=patient_id,
        )
    return AuditRecord(
        action=AuditAction.READ,
        outcome=AuditOutcome.SUCCESS,
        operation=_OPERATION,
        resource_type="AuditEvent",
        resource_id=None,
        patient_id=patient_id,
        client_id=OPERATOR_CLIENT_ID,
        organization_id=holder_id,
        subject=f"operator:{operator}",
    )
