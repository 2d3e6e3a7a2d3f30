"""Consent: a patient's permission to share named data classes with a recipient organization
(FHIR Consent, scope patient-privacy). Revocation takes effect on the next request."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import consents as domain
from api.domain.consents import ConsentStatus, DataClass, Purpose
from api.integrations.fhir.resources.consents import to_fhir_consent
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import parse_id, to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.schema.patient import Patient, load_patient
from api.services.policy import utcnow


@strawberry.federation.type(keys=["id"], description="A patient's consent (FHIR Consent).")
class Consent(Node):
    id: strawberry.ID
    patient_id: strawberry.ID
    purposes: list[Purpose]
    data_classes: list[DataClass]
    period_start: datetime
    period_end: datetime | None
    status: ConsentStatus = strawberry.field(description="Active, revoked or expired, as of now.")
    revoked_at: datetime | None
    revocation_reason: str | None
    source_reference: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.Consent]

    @classmethod
    def from_domain(cls, consent: domain.Consent) -> Consent:
        return cls(
            id=to_id(consent.id),
            patient_id=to_id(consent.patient_id),
            purposes=sorted(consent.purposes),
            data_classes=sorted(consent.data_classes),
            period_start=consent.period_start,
            period_end=consent.period_end,
            status=consent.status_at(utcnow()),
            revoked_at=consent.revoked_at,
            revocation_reason=consent.revocation_reason,
            source_reference=consent.source_reference,
            version=consent.version,
            created_at=consent.created_at,
            updated_at=consent.updated_at,
            record=consent,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Consent:
        return await load_consent(info, parse_id(id, "id"))

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_consent(self.record, now=utcnow()))

    @strawberry.field(description="The patient (null with an error when not disclosed to you).")
    async def patient(self, info: Info) -> Patient | None:
        return await load_patient(info, self.record.patient_id)

    @strawberry.field(description="The organization that recorded the consent.")
    async def recorded_by(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.recorded_by_organization_id)

    @strawberry.field(description="The organization the patient allows to receive the data.")
    async def recipient(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.recipient_organization_id)


async def load_consent(info: Info, consent_id: UUID) -> Consent:
    return Consent.from_domain(await info.context.loaders.consents.load(consent_id))
