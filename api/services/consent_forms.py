"""Signed consent forms (FHIR DocumentReference, the source a Consent cites): recorded by the
organization holding the patient's record, read by the parties to a consent that cites them
while that consent is in force (the form itself is PHI: names, signatures)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.consents import Consent, ConsentDecision, ConsentStatus, relying_on
from api.domain.documents import ConsentForm, check_content, source_reference_of
from api.domain.errors import (
    ConsentRequired,
    ConsentRevoked,
    DomainError,
    Forbidden,
    NotFound,
)
from api.domain.events import DomainEvent
from api.domain.patients import Patient
from api.domain.principal import Principal
from api.domain.verbatim import Verbatim, nothing_kept
from api.services import idempotency
from api.services.care_records import patient_held
from api.services.policy import (
    Capability,
    Refusal,
    answer_each,
    audit,
    hidden_beyond_caseload,
    patients_beyond_caseload,
    refuse_one,
    require,
    utcnow,
)
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class RecordConsentForm:
    patient_id: UUID
    content_type: str
    title: str | None = None
    url: str | None = None
    data: bytes | None = None
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent


async def record_consent_form(
    uow: UnitOfWork,
    principal: Principal,
    command: RecordConsentForm,
    *,
    idempotency_key: str | None = None,
) -> ConsentForm:
    """Keep the patient's signed consent form (a link or the file), so Consents can cite it."""
    require(principal, Capability.RECORD_CONSENT_FORMS)
    check_content(command.content_type, command.title, command.url, command.data)
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "recordConsentForm",
            command,
            load=uow.consent_forms.get_many,
            resource_type="DocumentReference",
            write=lambda: _record(uow, principal, command),
            patient_of=lambda form: form.patient_id,
        )
        await uow.commit()
    return written


async def _record(uow: UnitOfWork, principal: Principal, command: RecordConsentForm) -> ConsentForm:
    patient = await patient_held(
        uow,
        principal,
        command.patient_id,
        refused="only the organization holding the patient's record keeps its forms",
        operation="recordConsentForm",
        resource_type="DocumentReference",
    )
    now = utcnow()
    form = await uow.consent_forms.add(
        ConsentForm(
            id=uuid.uuid4(),
            patient_id=patient.id,
            organization_id=principal.organization_id,
            content_type=command.content_type,
            title=(command.title or "").strip() or None,
            url=command.url,
            data=command.data,
            version=1,
            created_at=now,
            updated_at=now,
            verbatim=command.verbatim,
        )
    )
    uow.record(
        audit(
            principal,
            action=AuditAction.CREATE,
            operation="recordConsentForm",
            resource_type="DocumentReference",
            resource_id=form.id,
            patient_id=patient.id,
        )
    )
    uow.collect(
        DomainEvent(
            "ConsentFormRecorded", "ConsentForm", form.id, (form.organization_id,), {}
        )
    )
    return form


def _grounds(
    form: ConsentForm,
    patient: Patient,
    consents: Sequence[Consent],
    organization_id: UUID,
    now: datetime,
) -> ConsentDecision | DomainError:
    """What lets the organization read the form now, or why not: the holder of the record always
    may; a party to a consent citing the form while that consent is in force (relied on)."""
    if organization_id in (form.organization_id, patient.managing_organization_id):
        return ConsentDecision(True, (), None)
    cited = source_reference_of(form.id)
    citing = [
        c
        for c in consents
        if c.source_reference == cited
        and organization_id in (c.recorded_by_organization_id, c.recipient_organization_id)
    ]
    if in_force := [c for c in citing if c.in_force_at(now)]:
        return relying_on(in_force)
    if any(c.status_at(now) is not ConsentStatus.ACTIVE for c in citing):
        return ConsentRevoked("the consent citing this form is no longer in force")
    if citing:
        return ConsentRequired("the consent citing this form is not in force yet")
    return Forbidden("no consent citing this form is addressed to your organization")


async def _grounds_of(
    uow: UnitOfWork, principal: Principal, forms: Sequence[ConsentForm]
) -> dict[UUID, ConsentDecision | DomainError]:
    patient_ids = sorted({f.patient_id for f in forms})
    patients = {p.id: p for p in await uow.patients.get_many(patient_ids) if p is not None}
    consents = await uow.consents.for_patients(patient_ids) if patient_ids else []
    now = utcnow()
    return {
        f.id: _grounds(f, patients[f.patient_id], consents, principal.organization_id, now)
        for f in forms
    }


async def get_consent_forms(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[ConsentForm | DomainError]:
    """Consent forms by id, or why the caller may not see each one."""
    require(principal, Capability.READ_CONSENT_FORMS)
    async with uow:
        found = await hidden_beyond_caseload(
            uow,
            principal,
            ids,
            await uow.consent_forms.get_many(ids),
            patient_of=lambda f: f.patient_id,
            resource_type="DocumentReference",
            operation="readConsentForm",
        )
        grounds = await _grounds_of(uow, principal, [f for f in found if f is not None])
        present = {wanted: f for wanted, f in zip(ids, found, strict=True) if f is not None}
        permits = {
            f.id: permit
            for f in present.values()
            if isinstance(permit := grounds[f.id], ConsentDecision)
        }
        shown = {wanted: f for wanted, f in present.items() if f.id in permits}
        refused = {
            wanted: (error, f.patient_id)
            for wanted, f in present.items()
            if not isinstance(error := grounds[f.id], ConsentDecision)
        }
        results = await answer_each(
            uow,
            principal,
            ids,
            found,
            shown,
            refused,
            resource_type="DocumentReference",
            operation="readConsentForm",
        )
        uow.record(
            *(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="readConsentForm",
                    resource_type="DocumentReference",
                    resource_id=f.id,
                    patient_id=f.patient_id,
                    consent=permits[f.id],
                )
                for f in shown.values()
            )
        )
        await uow.commit()
    return results


async def consent_forms_of_patient(
    uow: UnitOfWork, principal: Principal, patient_id: UUID
) -> list[ConsentForm]:
    """The patient's forms the caller may read, newest first."""
    require(principal, Capability.READ_CONSENT_FORMS)
    async with uow:
        (patient,) = await uow.patients.get_many([patient_id])
        if patient is None or await patients_beyond_caseload(
            uow,
            principal,
            [patient_id],
            resource_type="DocumentReference",
            operation="listConsentForms",
        ):
            raise NotFound("Patient", patient_id)
        forms = await uow.consent_forms.for_patients([patient_id])
        grounds = await _grounds_of(uow, principal, forms)
        shown = [(f, g) for f in forms if isinstance(g := grounds[f.id], ConsentDecision)]
        visible = [f for f, _ in shown]
        if not visible and principal.organization_id != patient.managing_organization_id:
            lapsed = [e for e in grounds.values() if isinstance(e, ConsentRequired)]
            error = (
                lapsed[0]
                if lapsed
                else Forbidden("no consent form of this patient is addressed to your organization")
            )
            raise await refuse_one(
                uow,
                principal,
                Refusal(
                    error, patient_id, NotFound("Patient", patient_id), "DocumentReference", None
                ),
                action=AuditAction.READ,
                operation="listConsentForms",
            )
        uow.record(
            *(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="listConsentForms",
                    resource_type="DocumentReference",
                    resource_id=f.id,
                    patient_id=patient_id,
                    consent=permit,
                )
                for f, permit in shown
            )
        )
        await uow.commit()
    return visible
