"""Revoking consents: one by id, or all of a patient's sharing with an organization at once.

Either party may revoke: the organization holding the patient's record (which recorded it) or
the recipient. Revocation takes effect on the next request everywhere because every read decides
anew; a write that relies on a consent holds it (`ConsentRepository.hold_for_patient`), so it
commits before the revocation or sees it. Each revocation is audited and announced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from api.domain import text
from api.domain.audit import AuditAction
from api.domain.consents import Consent, ConsentDecision, ConsentStatus, relying_on
from api.domain.errors import DomainError, Forbidden, NotFound, VersionConflict
from api.domain.principal import Principal
from api.domain.text import check_texts
from api.services.policy import (
    Capability,
    Refusal,
    audit,
    refuse_one,
    require,
    unchanged,
    utcnow,
)
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class RevokeConsents:
    """End all sharing of a patient's data with one organization."""

    patient_id: UUID
    recipient_organization_id: UUID
    reason: str | None = None


def parties_of(consent: Consent, managing_organization_id: UUID) -> set[UUID]:
    """Who may see and revoke a consent: its recorder, its recipient, the record's holder."""
    return {
        consent.recorded_by_organization_id,
        consent.recipient_organization_id,
        managing_organization_id,
    }


def grounds_of(
    consent: Consent, managing_organization_id: UUID, organization_id: UUID
) -> ConsentDecision | None:
    """What a party's read of a consent rests on: the recipient alone learns of it through the
    consent itself (named in the audit row); its recorder and the record's holder read their
    own records."""
    if organization_id in (consent.recorded_by_organization_id, managing_organization_id):
        return None
    return relying_on([consent])


def _reason(reason: str | None) -> str | None:
    """The reason as given (a blank one is no reason), within the free-text limits."""
    check_texts([("reason", reason, text.REASON)])
    return reason if reason and reason.strip() else None


async def _revoke(
    uow: UnitOfWork,
    principal: Principal,
    consent: Consent,
    *,
    reason: str | None,
    operation: str,
    now: datetime,
) -> Consent:
    """Write one revocation (the row is locked by the caller), its audit row and its event."""
    revoked, event = consent.revoke(reason, now)
    saved = await uow.consents.save(revoked)
    uow.record(
        audit(
            principal,
            action=AuditAction.UPDATE,
            operation=operation,
            resource_type="Consent",
            resource_id=consent.id,
            patient_id=consent.patient_id,
        )
    )
    uow.collect(event)
    return saved


async def _refuse(
    uow: UnitOfWork,
    principal: Principal,
    message: str,
    *,
    absent: NotFound,
    operation: str,
    consent_id: UUID | None,
    patient_id: UUID,
) -> DomainError:
    """The refusal to raise, audited: `absent` to an organization that does not know the
    patient (no existence oracle, see `policy.refuse`)."""
    return await refuse_one(
        uow,
        principal,
        Refusal(Forbidden(message), patient_id, absent, "Consent", consent_id),
        action=AuditAction.UPDATE,
        operation=operation,
    )


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
    kept_reason = _reason(reason)
    async with uow:
        consent = await uow.consents.get_for_update(consent_id)
        if consent is None:
            raise NotFound("Consent", consent_id)
        (patient,) = await uow.patients.get_many([consent.patient_id])
        assert patient is not None  # foreign key
        if principal.organization_id not in parties_of(consent, patient.managing_organization_id):
            raise await _refuse(
                uow,
                principal,
                "only a party to this consent may revoke it",
                absent=NotFound("Consent", consent_id),
                operation="revokeConsent",
                consent_id=consent.id,
                patient_id=patient.id,
            )
        if consent.revoked:
            uow.record(
                unchanged(
                    principal,
                    operation="revokeConsent",
                    resource_type="Consent",
                    resource_id=consent.id,
                    patient_id=consent.patient_id,
                )
            )
            await uow.commit()
            return consent
        if expected_version is not None and expected_version != consent.version:
            raise VersionConflict("Consent", expected_version, consent.version)
        # The time is taken once the row is locked: a write that held this consent committed
        # before it, so the revocation is never dated before a write that relied on it.
        revoked = await _revoke(
            uow, principal, consent, reason=kept_reason, operation="revokeConsent", now=utcnow()
        )
        await uow.commit()
    return revoked


async def revoke_consents(
    uow: UnitOfWork, principal: Principal, command: RevokeConsents
) -> list[Consent]:
    """Revoke every consent of the patient naming the recipient that is active or yet to start,
    in one transaction; the ones this call revoked, oldest first (none when nothing was left)."""
    require(principal, Capability.REVOKE_CONSENT)
    reason = _reason(command.reason)
    async with uow:
        (patient,) = await uow.patients.get_many([command.patient_id])
        if patient is None:
            raise NotFound("Patient", command.patient_id)
        (recipient,) = await uow.organizations.get_many([command.recipient_organization_id])
        if recipient is None:
            raise NotFound("Organization", command.recipient_organization_id)
        if principal.organization_id not in (patient.managing_organization_id, recipient.id):
            raise await _refuse(
                uow,
                principal,
                "only the organization holding the patient's record or the recipient may "
                "revoke this sharing",
                absent=NotFound("Patient", command.patient_id),
                operation="revokeConsents",
                consent_id=None,
                patient_id=patient.id,
            )
        # Serialised with grants for the same pair: a grant racing this call either committed
        # before it (and is revoked here) or starts after it.
        await uow.consents.serialise_sharing(patient.id, recipient.id)
        sharing = await uow.consents.sharing_for_update(patient.id, recipient.id)
        now = utcnow()
        revoked = [
            await _revoke(
                uow, principal, consent, reason=reason, operation="revokeConsents", now=now
            )
            for consent in sorted(sharing, key=lambda c: (c.created_at, c.id))
            if consent.status_at(now) is ConsentStatus.ACTIVE
        ]
        await uow.commit()
    return revoked
