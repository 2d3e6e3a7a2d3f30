"""Outcome measures (PHQ-9, GAD-7, local instruments); PHQ-9 item 9 > 0 is a safety signal."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.consents import DataClass
from api.domain.errors import Invalid
from api.domain.outcomes import Instrument, OutcomeMeasure, check_answers
from api.domain.principal import Principal
from api.domain.referrals import Referral, ReferralStatus
from api.domain.verbatim import Verbatim, nothing_kept
from api.services import idempotency
from api.services.care_records import patient_in_care, referral_of
from api.services.filters import ReferralBox, ReferralFilter
from api.services.policy import (
    Capability,
    Disclosure,
    audit,
    disclosed,
    listed_within_caseload,
    require,
    utcnow,
)
from api.services.repositories import UnitOfWork

_OUTCOMES = frozenset({DataClass.OUTCOMES})
_MAX_SIGNALLED_REFERRALS = 20


@dataclass(frozen=True)
class RecordOutcomeMeasure:
    patient_id: UUID
    instrument: Instrument
    item_answers: tuple[int, ...]
    administered_at: datetime | None = None
    referral_id: UUID | None = None
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent


async def record_outcome_measure(
    uow: UnitOfWork,
    principal: Principal,
    command: RecordOutcomeMeasure,
    *,
    idempotency_key: str | None = None,
) -> OutcomeMeasure:
    """Record an administered instrument; a PHQ-9 with item 9 > 0 raises SafetySignalRaised
    (`OutcomeMeasure.recorded`)."""
    require(principal, Capability.RECORD_OUTCOMES)
    check_answers(command.instrument, command.item_answers)
    now = utcnow()
    if command.administered_at is not None and command.administered_at > now:
        raise Invalid("must not be in the future", field="administeredAt")
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "recordOutcomeMeasure",
            command,
            load=uow.outcomes.get_many,
            resource_type="QuestionnaireResponse",
            write=lambda: _record(uow, principal, command, now),
            patient_of=lambda measure: measure.patient_id,
        )
        await uow.commit()
    return written


async def _record(
    uow: UnitOfWork, principal: Principal, command: RecordOutcomeMeasure, now: datetime
) -> OutcomeMeasure:
    patient = await patient_in_care(
        uow,
        principal,
        command.patient_id,
        operation="recordOutcomeMeasure",
        resource_type="QuestionnaireResponse",
    )
    await referral_of(uow, principal, patient, command.referral_id)
    measure = await uow.outcomes.add(
        OutcomeMeasure(
            id=uuid.uuid4(),
            patient_id=patient.id,
            organization_id=principal.organization_id,
            referral_id=command.referral_id,
            instrument=command.instrument,
            administered_at=command.administered_at or now,
            item_answers=command.item_answers,
            version=1,
            created_at=now,
            updated_at=now,
            verbatim=command.verbatim,
        )
    )
    concerned = await _concerned_referrals(uow, principal, measure) if measure.safety_signal else []
    uow.collect(*measure.recorded(concerned))
    uow.record(
        audit(
            principal,
            action=AuditAction.CREATE,
            operation="recordOutcomeMeasure",
            resource_type="QuestionnaireResponse",
            resource_id=measure.id,
            patient_id=patient.id,
        )
    )
    return measure


async def _concerned_referrals(
    uow: UnitOfWork, principal: Principal, measure: OutcomeMeasure
) -> list[Referral]:
    """The referrals a safety signal concerns: the one the measure was recorded under, else the
    participant's open referrals the recorder is working on (see `OutcomeMeasure.recorded`;
    the clinic reads the measure itself only when the patient's consent shares outcomes with it,
    `outcomes_for_patients`)."""
    if measure.referral_id is not None:
        return [r for r in await uow.referrals.get_many([measure.referral_id]) if r]
    return await uow.referrals.search(
        principal.organization_id,
        ReferralFilter(
            box=ReferralBox.INBOX,
            patient_id=measure.patient_id,
            statuses=frozenset(s for s in ReferralStatus if not s.is_final),
        ),
        None,
        _MAX_SIGNALLED_REFERRALS,
    )


async def outcomes_for_patients(
    uow: UnitOfWork, principal: Principal, patient_ids: Sequence[UUID]
) -> list[list[OutcomeMeasure]]:
    """Per patient, the measures the caller may see (recorder, or consent `outcomes`)."""
    require(principal, Capability.READ_OUTCOMES)
    async with uow:
        visible = await disclosed(
            uow,
            principal,
            await listed_within_caseload(
                uow,
                principal,
                await uow.outcomes.for_patients(patient_ids),
                patient_of=lambda m: m.patient_id,
                resource_id=lambda m: m.id,
                resource_type="QuestionnaireResponse",
                operation="readOutcomeMeasure",
            ),
            resource_type="QuestionnaireResponse",
            operation="readOutcomeMeasure",
            disclosure=lambda m: Disclosure(m.patient_id, m.organization_id, _OUTCOMES),
            resource_id=lambda m: m.id,
        )
        await uow.commit()
    return [[m for m in visible if m.patient_id == pid] for pid in patient_ids]
