"""Reading the audit trail: the holding organization sees every access to its patient's data
(an accounting of disclosures, 45 CFR 164.528); other organizations that know the patient see
their own accesses; to any other organization the patient does not exist (no existence oracle)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from api.domain.audit import AuditAction, AuditEvent
from api.domain.errors import DomainError, Forbidden, Invalid, NotFound
from api.domain.principal import Principal
from api.services.pagination import MAX_PAGE_SIZE, Keyset
from api.services.policy import Capability, Refusal, known_patients, per_id, refuse_one, require
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
        holder = patient.held_by(principal.organization_id)
        if not holder and patient_id not in await known_patients(
            uow, principal.organization_id, [patient_id]
        ):
            # Its own denied attempts are about a patient it must not learn exists.
            raise await refuse_one(
                uow,
                principal,
                Refusal(
                    Forbidden("your organization has no relationship with this patient"),
                    patient_id,
                    NotFound("Patient", patient_id),
                    "AuditEvent",
                    None,
                ),
                action=AuditAction.READ,
                operation="listAuditEvents",
            )
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
        visible = {
            wanted: event
            for wanted, event in zip(ids, found, strict=True)
            if event is not None
            and principal.organization_id
            in (
                event.record.organization_id,
                holders.get(event.record.patient_id) if event.record.patient_id else None,
            )
        }
        results = await per_id(
            uow,
            principal,
            ids,
            found,
            visible,
            resource_type="AuditEvent",
            operation="readAuditEvent",
            refused="this audit event is about another organization's patient",
            patient_of=lambda e: e.record.patient_id,
        )
        await uow.commit()
    return results
