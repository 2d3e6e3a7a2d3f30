"""Consent mutations: grant (by the organization holding the record), revoke one, and revoke
all of a patient's sharing with an organization."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.consents import DataClass, Purpose
from api.schema.consent import Consent
from api.schema.context import Info
from api.schema.ids import parse_id
from api.services import consent_revocations, consents
from api.services.consent_revocations import RevokeConsents
from api.services.consents import GrantConsent


@strawberry.input(description="Record a patient's consent to share data with an organization.")
class GrantConsentInput:
    patient_id: strawberry.ID
    recipient_organization_id: strawberry.ID
    purposes: list[Purpose]
    data_classes: list[DataClass] = strawberry.field(
        description="`substance_use` (42 CFR Part 2) is shared only when named here."
    )
    period_start: datetime | None = None
    period_end: datetime | None = None
    source_reference: str | None = strawberry.field(
        default=None, description="Where the signed consent lives (e.g. a DocumentReference)."
    )
    idempotency_key: str | None = None

    def to_command(self) -> GrantConsent:
        return GrantConsent(
            patient_id=parse_id(self.patient_id, "input.patientId"),
            recipient_organization_id=parse_id(
                self.recipient_organization_id, "input.recipientOrganizationId"
            ),
            purposes=frozenset(self.purposes),
            data_classes=frozenset(self.data_classes),
            period_start=self.period_start,
            period_end=self.period_end,
            source_reference=self.source_reference,
        )


@strawberry.input(description="Revoke a consent; it stops covering anything on the next request.")
class RevokeConsentInput:
    consent_id: strawberry.ID
    reason: str | None = None
    expected_version: int | None = None


@strawberry.input(description="End all sharing of a patient's data with one organization.")
class RevokeConsentsInput:
    patient_id: strawberry.ID
    recipient_organization_id: strawberry.ID
    reason: str | None = None

    def to_command(self) -> RevokeConsents:
        return RevokeConsents(
            patient_id=parse_id(self.patient_id, "input.patientId"),
            recipient_organization_id=parse_id(
                self.recipient_organization_id, "input.recipientOrganizationId"
            ),
            reason=self.reason,
        )


@strawberry.type
class ConsentMutations:
    @strawberry.mutation(
        description="Record a consent (FHIR Consent, patient-privacy). A grant repeating an "
        "active consent (same recipient, purposes, data classes, period and source) returns "
        "that consent instead of recording a second one."
    )
    async def grant_consent(self, info: Info, input: GrantConsentInput) -> Consent | None:
        consent = await consents.grant_consent(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return Consent.from_domain(consent)

    @strawberry.mutation(
        description="Revoke a consent (idempotent: revoking a revoked consent is a no-op)."
    )
    async def revoke_consent(self, info: Info, input: RevokeConsentInput) -> Consent | None:
        consent = await consents.revoke_consent(
            info.context.unit_of_work(),
            info.context.principal,
            parse_id(input.consent_id, "input.consentId"),
            reason=input.reason,
            expected_version=input.expected_version,
        )
        info.context.loaders.consents.prime(consent.id, consent, force=True)
        return Consent.from_domain(consent)

    @strawberry.mutation(
        description="Revoke every consent of the patient naming the organization (active or "
        "yet to start) in one step, by the organization holding the record or the recipient. "
        "Returns the consents this call revoked (empty when none was left to revoke)."
    )
    async def revoke_consents(
        self, info: Info, input: RevokeConsentsInput
    ) -> list[Consent] | None:
        revoked = await consent_revocations.revoke_consents(
            info.context.unit_of_work(), info.context.principal, input.to_command()
        )
        for consent in revoked:
            info.context.loaders.consents.prime(consent.id, consent, force=True)
        return [Consent.from_domain(consent) for consent in revoked]
