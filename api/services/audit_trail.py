"""Reading the audit trail: the holding organization sees every access to its patient's data
(an accounting of disclosures, 45 CFR 164.528); other organizations see their own accesses."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from api.domain.audit import AuditEvent
from api.domain.errors import Invalid, NotFound
from api.domain.principal import Principal
from api.services.pagination import MAX_PAGE_SIZE
from api.services.policy import Capability, require
from api.services.repositories import UnitOfWork


async def list_audit_events(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: UUID,
    *,
    before: datetime | None = None,
    limit: int = 50,
) -> list[AuditEvent]:
    require(principal, Capability.READ_AUDIT)
    if not 0 < limit <= MAX_PAGE_SIZE:
        raise Invalid(f"must be between 1 and {MAX_PAGE_SIZE}", field="first")
    async with uow:
        (patient,) = await uow.patients.get_many([patient_id])
        if patient is None:
            raise NotFound("Patient", patient_id)
        holder = patient.managing_organization_id == principal.organization_id
        return await uow.audit.for_patient(
            patient_id, None if holder else principal.organization_id, before, limit
        )
