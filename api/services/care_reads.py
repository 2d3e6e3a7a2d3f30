"""Outcome measures by id, under the same consent rule as the
per-patient reads: the recording organization always, others with a consent for the class."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.consents import DataClass
from api.domain.errors import DomainError, NotFound
from api.domain.outcomes import OutcomeMeasure
from api.domain.principal import Principal
from api.services.policy import (
    Capability,
    Disclosure,
    audit,
    decide,
    denied,
    refusal,
    require,
    utcnow,
)
from api.services.repositories import UnitOfWork


async def get_outcome_measures(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[OutcomeMeasure | DomainError]:
    """Outcome measures by id, or why the caller may not see each one."""
    require(principal, Capability.READ_OUTCOMES)
    async with uow:
        found = await uow.outcomes.get_many(ids)
        present = [m for m in found if m is not None]
        decisions = await decide(
            uow,
            principal,
            [
                Disclosure(m.patient_id, m.organization_id, frozenset({DataClass.OUTCOMES}))
                for m in present
            ],
            utcnow(),
        )
        by_id = {m.id: d for m, d in zip(present, decisions, strict=True)}
        results: list[OutcomeMeasure | DomainError] = []
        records = []
        for measure_id, measure in zip(ids, found, strict=True):
            if measure is None:
                results.append(NotFound("OutcomeMeasure", measure_id))
                continue
            decision = by_id[measure.id]
            if decision.permitted:
                results.append(measure)
                records.append(
                    audit(
                        principal,
                        action=AuditAction.READ,
                        operation="readOutcomeMeasure",
                        resource_type="QuestionnaireResponse",
                        resource_id=measure.id,
                        patient_id=measure.patient_id,
                        consent_ids=decision.consent_ids,
                    )
                )
            else:
                error = refusal(decision)
                results.append(error)
                denied(
                    uow,
                    principal,
                    error,
                    action=AuditAction.READ,
                    operation="readOutcomeMeasure",
                    resource_type="QuestionnaireResponse",
                    resource_id=measure.id,
                    patient_id=measure.patient_id,
                )
        await uow.audit.add_many(records)
        await uow.commit()
    return results
