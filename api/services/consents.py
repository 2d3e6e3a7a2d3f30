"""Consents: recorded by the organization holding the patient, revocable by either party.

Revocation takes effect on the next request everywhere because every read decides anew.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from api.domain.audit import AuditAction, AuditRecord
from api.domain.consents import Consent, DataClass, Purpose
from api.domain.documents import form_id_in, source_reference_of
from api.domain.errors import (
    DomainError,
    Forbidden,
    Invalid,
    InvalidDetail,
    NotFound,
    VersionConflict,
)
from api.domain.events import DomainEvent
from api.domain.principal import Principal
from api.services import idempotency
from api.services.policy import Capability, audit, denied, require, utcnow
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class GrantConsent:
    patient_id: UUID
    recipient_organization_id: UUID
    purposes: frozenset[Purpose]
    data_classes: frozenset[DataClass]
    period_start: datetime | None = None
    period_end: datetime | None = None
    source_reference: str | None = None


def _check(command: GrantConsent, now: datetime) -> None:
    problems = []
    if not command.purposes:
        problems.append(InvalidDetail("purposes", "name at least one purpose"))
    if not command.data_classes:
        problems.append(InvalidDetail("dataClasses", "name at least one data class"))
    start = command.period_start or now
    if command.period_end is not None and command.period_end <= start:
        problems.append(InvalidDetail("periodEnd", "must be after the start of the period"))
    if problems:
        raise Invalid(problems)


def _parties(consent: Consent, managing_organization_id: UUID) -> set[UUID]:
    return {
        consent.recorded_by_organization_id,
        consent.recipient_organization_id,
        managing_organization_id,
    }


def _event(event_type: str, consent: Consent) -> DomainEvent:
    return DomainEvent(
        event_type,
        "Consent",
        consent.id,
        (consent.recorded_by_organization_id, consent.recipient_organization_id),
        {"status": consent.status_at(utcnow()).value, "version": consent.version},
    )


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
        again = await idempotency.replayed(
            uow,
            principal,
            idempotency_key,
            "grantConsent",
            command,
            uow.consents.get_many,
            "Consent",
        )
        if again is not None:
            await uow.commit()
            return again
        (patient,) = await uow.patients.get_many([command.patient_id])
        if patient is None:
            raise NotFound("Patient", command.patient_id)
        if patient.managing_organization_id != principal.organization_id:
            error = Forbidden("only the organization holding the patient's record records consent")
            denied(
                uow,
                principal,
                error,
                action=AuditAction.CREATE,
                operation="grantConsent",
                resource_type="Consent",
                resource_id=None,
                patient_id=patient.id,
            )
            raise error
        (recipient,) = await uow.organizations.get_many([command.recipient_organization_id])
        if recipient is None:
            raise NotFound("Organization", command.recipient_organization_id)
        await _check_source(uow, principal, command)
        consent = await uow.consents.add(
            Consent(
                id=uuid.uuid4(),
                patient_id=patient.id,
                recorded_by_organization_id=principal.organization_id,
                recipient_organization_id=recipient.id,
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
            )
        )
        await idempotency.remember(
            uow, principal, idempotency_key, "grantConsent", command, consent.id
        )
        await uow.audit.add_many(
            [
                audit(
                    principal,
                    action=AuditAction.CREATE,
                    operation="grantConsent",
                    resource_type="Consent",
                    resource_id=consent.id,
                    patient_id=patient.id,
                )
            ]
        )
        await uow.outbox.add_many([_event("ConsentGranted", consent)])
        await uow.commit()
    return consent


async def revoke_consent(
    uow: UnitOfWork,
    principal: Principal,
    consent_id: UUID,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Consent:
    """Revoke a consent (FHIR status `inactive`); idempotent for an already revoked one."""
    require(principal, Capability.REVOKE_CONSENT)
    async with uow:
        consent = await uow.consents.get_for_update(consent_id)
        if consent is None:
            raise NotFound("Consent", consent_id)
        (patient,) = await uow.patients.get_many([consent.patient_id])
        assert patient is not None  # foreign key
        if principal.organization_id not in _parties(consent, patient.managing_organization_id):
            error = Forbidden("only a party to this consent may revoke it")
            denied(
                uow,
                principal,
                error,
                action=AuditAction.UPDATE,
                operation="revokeConsent",
                resource_type="Consent",
                resource_id=consent.id,
                patient_id=patient.id,
            )
            raise error
        if consent.revoked:
            await uow.commit()
            return consent
        if expected_version is not None and expected_version != consent.version:
            raise VersionConflict("Consent", expected_version, consent.version)
        now = utcnow()
        revoked = await uow.consents.save(
            replace(
                consent,
                revoked=True,
                revoked_at=now,
                revocation_reason=(reason or "").strip() or None,
                version=consent.version + 1,
                updated_at=now,
            )
        )
        await uow.audit.add_many(
            [
                audit(
                    principal,
                    action=AuditAction.UPDATE,
                    operation="revokeConsent",
                    resource_type="Consent",
                    resource_id=consent.id,
                    patient_id=patient.id,
                )
            ]
        )
        await uow.outbox.add_many([_event("ConsentRevoked", revoked)])
        await uow.commit()
    return revoked


async def get_consents(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[Consent | DomainError]:
    """Consents by id; visible to their parties and the patient's managing organization."""
    require(principal, Capability.READ_CONSENTS)
    async with uow:
        found = await uow.consents.get_many(ids)
        patient_ids = sorted({c.patient_id for c in found if c is not None})
        patients = {p.id: p for p in await uow.patients.get_many(patient_ids) if p is not None}
        results: list[Consent | DomainError] = []
        records = []
        for consent_id, consent in zip(ids, found, strict=True):
            if consent is None:
                results.append(NotFound("Consent", consent_id))
                continue
            holder = patients[consent.patient_id].managing_organization_id
            if principal.organization_id in _parties(consent, holder):
                results.append(consent)
                records.append(
                    audit(
                        principal,
                        action=AuditAction.READ,
                        operation="readConsent",
                        resource_type="Consent",
                        resource_id=consent.id,
                        patient_id=consent.patient_id,
                    )
                )
            else:
                error = Forbidden("this consent is not addressed to your organization")
                results.append(error)
                denied(
                    uow,
                    principal,
                    error,
                    action=AuditAction.READ,
                    operation="readConsent",
                    resource_type="Consent",
                    resource_id=consent.id,
                    patient_id=consent.patient_id,
                )
        await uow.audit.add_many(records)
        await uow.commit()
    return results


async def list_consents(uow: UnitOfWork, principal: Principal, patient_id: UUID) -> list[Consent]:
    """The patient's consents the caller is party to (all of them for the holding organization)."""
    require(principal, Capability.READ_CONSENTS)
    async with uow:
        (patient,) = await uow.patients.get_many([patient_id])
        if patient is None:
            raise NotFound("Patient", patient_id)
        consents = await uow.consents.for_patients([patient_id])
        visible = [
            c
            for c in consents
            if principal.organization_id in _parties(c, patient.managing_organization_id)
        ]
        if not visible and principal.organization_id != patient.managing_organization_id:
            error = Forbidden("no consent of this patient is addressed to your organization")
            denied(
                uow,
                principal,
                error,
                action=AuditAction.READ,
                operation="listConsents",
                resource_type="Consent",
                resource_id=None,
                patient_id=patient_id,
            )
            raise error
        await uow.audit.add_many(
            [
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="listConsents",
                    resource_type="Consent",
                    resource_id=c.id,
                    patient_id=patient_id,
                )
                for c in visible
            ]
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
        if form is None:
            return []
        (patient,) = await uow.patients.get_many([form.patient_id])
        assert patient is not None  # foreign key
        cited = source_reference_of(form.id)
        visible = [
            c
            for c in await uow.consents.for_patients([form.patient_id])
            if c.source_reference == cited
            and principal.organization_id in _parties(c, patient.managing_organization_id)
        ]
        await uow.audit.add_many(
            [
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation="listConsents",
                    resource_type="Consent",
                    resource_id=c.id,
                    patient_id=c.patient_id,
                )
                for c in visible
            ]
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
        present = sorted(p.id for p in patients.values() if p is not None)
        consents = await uow.consents.for_patients(present) if present else []
        results: list[list[Consent] | DomainError] = []
        records: list[AuditRecord] = []
        for patient_id in patient_ids:
            patient = patients[patient_id]
            if patient is None:
                results.append(NotFound("Patient", patient_id))
                continue
            visible = [
                c
                for c in consents
                if c.patient_id == patient_id
                and principal.organization_id in _parties(c, patient.managing_organization_id)
            ]
            if not visible and principal.organization_id != patient.managing_organization_id:
                error = Forbidden("no consent of this patient is addressed to your organization")
                results.append(error)
                denied(
                    uow,
                    principal,
                    error,
                    action=AuditAction.READ,
                    operation="listConsents",
                    resource_type="Consent",
                    resource_id=None,
                    patient_id=patient_id,
                )
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
                )
                for c in visible
            )
        await uow.audit.add_many(records)
        await uow.commit()
    return results
