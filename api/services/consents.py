"""Consents: recorded by the organization holding the patient, revocable by either party
(`consent_revocations`), read by their parties.

Revocation takes effect on the next request everywhere because every read decides anew. A grant
that repeats a consent already active returns that consent instead of recording a duplicate,
which revoking "the" consent would leave in force.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from api.domain import text
from api.domain.audit import AuditAction, AuditRecord
from api.domain.consents import Consent, ConsentStatus, DataClass, Purpose
from api.domain.documents import form_id_in, source_reference_of
from api.domain.errors import DomainError, Forbidden, Invalid, InvalidDetail, NotFound
from api.domain.principal import Principal
from api.domain.text import text_problems
from api.domain.verbatim import Verbatim, nothing_kept
from api.services import idempotency
from api.services.care_records import patient_held
from api.services.consent_revocations import grounds_of, parties_of
from api.services.consent_revocations import revoke_consent as revoke_consent
from api.services.policy import (
    Capability,
    Refusal,
    audit,
    hidden_beyond_caseload,
    patients_beyond_caseload,
    per_id,
    refuse,
    refuse_one,
    require,
    utcnow,
)
from api.services.repositories import UnitOfWork

# Audit detail of a grant answered with the identical consent already in force.
ALREADY_GRANTED = "ALREADY_GRANTED"


@dataclass(frozen=True)
class GrantConsent:
    patient_id: UUID
    recipient_organization_id: UUID
    purposes: frozenset[Purpose]
    data_classes: frozenset[DataClass]
    period_start: datetime | None = None
    period_end: datetime | None = None
    source_reference: str | None = None
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent


def _check(command: GrantConsent, now: datetime) -> None:
    problems = []
    if not command.purposes:
        problems.append(InvalidDetail("purposes", "name at least one purpose"))
    if not command.data_classes:
        problems.append(InvalidDetail("dataClasses", "name at least one data class"))
    start = command.period_start or now
    if command.period_end is not None and command.period_end <= start:
        problems.append(InvalidDetail("periodEnd", "must be after the start of the period"))
    problems += text_problems("sourceReference", command.source_reference, text.URI)
    if problems:
        raise Invalid(problems)


async def _check_source(uow: UnitOfWork, principal: Principal, command: GrantConsent) -> None:
    """A source naming a form recorded here must be this patient's, kept by the caller."""
    form_id = form_id_in(command.source_reference)
    if form_id is None:
        return
    (form,) = await uow.consent_forms.get_many([form_id])
    if (
        form is None
        or form.patient_id != command.patient_id
        or form.organization_id != principal.organization_id
    ):
        raise Invalid(
            "not a consent form of this patient kept by your organization",
            field="sourceReference",
        )


async def grant_consent(
    uow: UnitOfWork,
    principal: Principal,
    command: GrantConsent,
    *,
    idempotency_key: str | None = None,
) -> Consent:
    """Record a patient's consent to share named data classes with a recipient organization."""
    require(principal, Capability.GRANT_CONSENT)
    now = utcnow()
    _check(command, now)
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "grantConsent",
            command,
            load=uow.consents.get_many,
            resource_type="Consent",
            write=lambda: _grant(uow, principal, command),
            patient_of=lambda consent: consent.patient_id,
        )
        await uow.commit()
    return written


async def _grant(uow: UnitOfWork, principal: Principal, command: GrantConsent) -> Consent:
    patient = await patient_held(
        uow,
        principal,
        command.patient_id,
        refused="only the organization holding the patient's record records consent",
        operation="grantConsent",
        resource_type="Consent",
    )
    (recipient,) = await uow.organizations.get_many([command.recipient_organization_id])
    if recipient is None:
        raise NotFound("Organization", command.recipient_organization_id)
    await _check_source(uow, principal, command)
    # One grant for this patient and recipient at a time, over consents held as read: two
    # identical grants record one consent, and one returned as already granted is not being
    # revoked underneath.
    await uow.consents.serialise_sharing(patient.id, recipient.id)
    await uow.consents.hold_for_patient(patient.id)
    now = utcnow()
    consent = _already_granted(await uow.consents.for_patients([patient.id]), command, now)
    if consent is None:
        consent = await _record(uow, principal, command, now)
    else:
        uow.record(
            audit(
                principal,
                action=AuditAction.READ,
                operation="grantConsent",
                resource_type="Consent",
                resource_id=consent.id,
                patient_id=patient.id,
                detail_code=ALREADY_GRANTED,
            )
        )
    return consent


def _already_granted(
    consents: Sequence[Consent], command: GrantConsent, now: datetime
) -> Consent | None:
    """An active consent the grant would only repeat: same recipient, purposes, data classes,
    end and source, the same start (or, with none given, one already in force), and the same
    document as sent (another wording of it is a consent of its own, never merged into this)."""
    for consent in consents:
        if (
            consent.status_at(now) is ConsentStatus.ACTIVE
            and consent.recipient_organization_id == command.recipient_organization_id
            and consent.purposes == command.purposes
            and consent.data_classes == command.data_classes
            and consent.period_end == command.period_end
            and consent.source_reference == command.source_reference
            and consent.verbatim == command.verbatim
            and (
                consent.period_start == command.period_start
                if command.period_start is not None
                else consent.period_start <= now
            )
        ):
            return consent
    return None


async def _record(
    uow: UnitOfWork, principal: Principal, command: GrantConsent, now: datetime
) -> Consent:
    consent = await uow.consents.add(
        Consent(
            id=uuid.uuid4(),
            patient_id=command.patient_id,
            recorded_by_organization_id=principal.organization_id,
            recipient_organization_id=command.recipient_organization_id,
            purposes=command.purposes,
            data_classes=command.data_classes,
            period_start=command.period_start or now,
            period_end=command.period_end,
            revoked=False,
            revoked_at=None,
            revocation_reason=None,
            source_reference=command.source_reference,
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
            operation="grantConsent",
            resource_type="Consent",
            resource_id=consent.id,
            patient_id=consent.patient_id,
        )
    )
    uow.collect(consent.event("ConsentGranted", now))
    return consent


async def get_consents(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[Consent | DomainError]:
    """Consents by id; visible to their parties and the patient's managing organization."""
    require(principal, Capability.READ_CONSENTS)
    async with uow:
        found = await hidden_beyond_caseload(
            uow,
            principal,
            ids,
            await uow.consents.get_many(ids),
            patient_of=lambda c: c.patient_id,
            resource_type="Consent",
            operation="readConsent",
        )
        patient_ids = sorted({c.patient_id for c in found if c is not None})
        patients = {p.id: p for p in await uow.patients.get_many(patient_ids) if p is not None}
        visible = {
            consent_id: consent
            for consent_id, consent in zip(ids, found, strict=True)
            if consent is not None
            and principal.organization_id
            in parties_of(consent, patients[consent.patient_id].managing_organization_id)
        }
        results = await per_id(
            uow,
            principal,
            ids,
            found,
            visible,
            resource_type="Consent",
            operation="readConsent",
            refused="this consent is not addressed to your organization",
            patient_of=lambda c: c.patient_id,
        )
        uow.record(
            *(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="readConsent",
                    resource_type="Consent",
                    resource_id=consent.id,
                    patient_id=consent.patient_id,
                    consent=grounds_of(
                        consent,
                        patients[consent.patient_id].managing_organization_id,
                        principal.organization_id,
                    ),
                )
                for consent in visible.values()
            )
        )
        await uow.commit()
    return results


def _none_addressed(patient_id: UUID) -> Refusal:
    return Refusal(
        Forbidden("no consent of this patient is addressed to your organization"),
        patient_id,
        NotFound("Patient", patient_id),
        "Consent",
        None,
    )


async def list_consents(uow: UnitOfWork, principal: Principal, patient_id: UUID) -> list[Consent]:
    """The patient's consents the caller is party to (all of them for the holding organization)."""
    require(principal, Capability.READ_CONSENTS)
    async with uow:
        (patient,) = await uow.patients.get_many([patient_id])
        if patient is None or await patients_beyond_caseload(
            uow, principal, [patient_id], resource_type="Consent", operation="listConsents"
        ):
            raise NotFound("Patient", patient_id)
        consents = await uow.consents.for_patients([patient_id])
        visible = [
            c
            for c in consents
            if principal.organization_id in parties_of(c, patient.managing_organization_id)
        ]
        if not visible and principal.organization_id != patient.managing_organization_id:
            raise await refuse_one(
                uow,
                principal,
                _none_addressed(patient_id),
                action=AuditAction.READ,
                operation="listConsents",
            )
        uow.record(
            *(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="listConsents",
                    resource_type="Consent",
                    resource_id=c.id,
                    patient_id=patient_id,
                    consent=grounds_of(
                        c, patient.managing_organization_id, principal.organization_id
                    ),
                )
                for c in visible
            )
        )
        await uow.commit()
    return visible


async def consents_citing_form(
    uow: UnitOfWork, principal: Principal, form_id: UUID
) -> list[Consent]:
    """The consents whose source is this recorded form, among those the caller is party to."""
    require(principal, Capability.READ_CONSENTS)
    async with uow:
        (form,) = await uow.consent_forms.get_many([form_id])
        if form is None or await patients_beyond_caseload(
            uow, principal, [form.patient_id], resource_type="Consent", operation="listConsents"
        ):
            return []
        (patient,) = await uow.patients.get_many([form.patient_id])
        assert patient is not None  # foreign key
        cited = source_reference_of(form.id)
        visible = [
            c
            for c in await uow.consents.for_patients([form.patient_id])
            if c.source_reference == cited
            and principal.organization_id in parties_of(c, patient.managing_organization_id)
        ]
        uow.record(
            *(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="listConsents",
                    resource_type="Consent",
                    resource_id=c.id,
                    patient_id=c.patient_id,
                    consent=grounds_of(
                        c, patient.managing_organization_id, principal.organization_id
                    ),
                )
                for c in visible
            )
        )
        await uow.commit()
    return visible


async def consents_of_patients(
    uow: UnitOfWork, principal: Principal, patient_ids: Sequence[UUID]
) -> list[list[Consent] | DomainError]:
    """Per patient, the consents the caller is party to, or why it may see none (DataLoaders).

    The batch form of `list_consents`: the same rule, one query for all the patients.
    """
    require(principal, Capability.READ_CONSENTS)
    async with uow:
        patients = dict(zip(patient_ids, await uow.patients.get_many(patient_ids), strict=True))
        hidden = await patients_beyond_caseload(
            uow,
            principal,
            [p.id for p in patients.values() if p is not None],
            resource_type="Consent",
            operation="listConsents",
        )
        patients = {pid: None if pid in hidden else p for pid, p in patients.items()}
        present = sorted(p.id for p in patients.values() if p is not None)
        consents = await uow.consents.for_patients(present) if present else []
        results: list[list[Consent] | DomainError] = []
        records: list[AuditRecord] = []
        refused: dict[int, Refusal] = {}
        for index, patient_id in enumerate(patient_ids):
            patient = patients[patient_id]
            if patient is None:
                results.append(NotFound("Patient", patient_id))
                continue
            visible = [
                c
                for c in consents
                if c.patient_id == patient_id
                and principal.organization_id in parties_of(c, patient.managing_organization_id)
            ]
            if not visible and principal.organization_id != patient.managing_organization_id:
                refused[index] = _none_addressed(patient_id)
                results.append(refused[index].error)
                continue
            results.append(visible)
            records.extend(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="listConsents",
                    resource_type="Consent",
                    resource_id=c.id,
                    patient_id=patient_id,
                    consent=grounds_of(
                        c, patient.managing_organization_id, principal.organization_id
                    ),
                )
                for c in visible
            )
        told = await refuse(
            uow,
            principal,
            list(refused.values()),
            action=AuditAction.READ,
            operation="listConsents",
        )
        for index, error in zip(refused, told, strict=True):
            results[index] = error
        uow.record(*records)
        await uow.commit()
    return results
