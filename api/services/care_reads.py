"""Outcome measures by id, under the same consent rule as the
per-patient reads: the recording organization always, others with a consent for the class."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from api.domain.consents import DataClass
from api.domain.errors import DomainError
from api.domain.outcomes import OutcomeMeasure
from api.domain.principal import Principal
from api.services.policy import (
    Capability,
    Disclosure,
    disclose_each,
    hidden_beyond_caseload,
    require,
)
from api.services.repositories import UnitOfWork

_OUTCOMES = frozenset({DataClass.OUTCOMES})


async def get_outcome_measures(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[OutcomeMeasure | DomainError]:
    """Outcome measures by id, or why the caller may not see each one."""
    require(principal, Capability.READ_OUTCOMES)
    async with uow:
        found = await hidden_beyond_caseload(
            uow,
            principal,
            ids,
            await uow.outcomes.get_many(ids),
            patient_of=lambda m: m.patient_id,
            resource_type="QuestionnaireResponse",
            operation="readOutcomeMeasure",
        )
        results = await disclose_each(
            uow,
            principal,
            ids,
            found,
            resource_type="QuestionnaireResponse",
            operation="readOutcomeMeasure",
            disclosure=lambda m: Disclosure(m.patient_id, m.organization_id, _OUTCOMES),
        )
        await uow.commit()
    return results
