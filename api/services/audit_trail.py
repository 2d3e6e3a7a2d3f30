"""Reading the audit trail: the holding organization sees every access to its patient's data
(an accounting of disclosures, 45 CFR 164.528); other organizations see their own accesses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from api.domain.audit import AuditEvent
from api.domain.errors import DomainError, Forbidden, Invalid, NotFound
from api.domain.principal import Principal
from api.services.pagination import MAX_PAGE_SIZE, Keyset
from api.services.policy import Capability, require
from api.services.repositories import UnitOfWork


async def list_audit_events(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: UUID,
    *,
    before: datetime | None = None,
    limit: int = 50,
    after: Keyset | None = None,
) -> list[AuditEvent]:
    """Newest first; `after` (the last event of a page) continues where that page ended."""
    require(principal, Capability.READ_AUDIT)
    if not 0 < limit <= MAX_PAGE_SIZE:
        raise Invalid(f"must be between 1 and {MAX_PAGE_SIZE}", field="first")
    async with uow:
        (patient,) = await uow.patients.get_many([patient_id])
        if patient is None:
            raise NotFound("Patient", patient_id)
        holder = patient.managing_organization_id == principal.organization_id
        return await uow.audit.for_patient(
            patient_id,
            None if holder else principal.organization_id,
            after.updated_at if after else before,
            limit,
            before_id=after.id if after else None,
        )


async def get_audit_events(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[AuditEvent | DomainError]:
    """Audit events by id: the patient's holding organization sees every access to the patient's
    data, any organization its own accesses."""
    require(principal, Capability.READ_AUDIT)
    async with uow:
        found = await uow.audit.get_many(ids)
        patient_ids = sorted({e.record.patient_id for e in found if e and e.record.patient_id})
        holders = {
            p.id: p.managing_organization_id
            for p in await uow.patients.get_many(patient_ids)
            if p is not None
        }
    results: list[AuditEvent | DomainError] = []
    for event_id, event in zip(ids, found, strict=True):
        if event is None:
            results.append(NotFound("AuditEvent", event_id))
        elif principal.organization_id in (
            event.record.organization_id,
            holders.get(event.record.patient_id) if event.record.patient_id else None,
        ):
            results.append(event)
        else:
            results.append(Forbidden("this audit event is about another organization's patient"))
    return results
