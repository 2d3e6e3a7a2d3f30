"""AuditEvent: every read and write of patient data, and every refusal (FHIR AuditEvent)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.domain import audit as domain
from api.domain.audit import AuditAction, AuditOutcome
from api.integrations.fhir.resources.audit import to_fhir_audit_event
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization


@strawberry.type(description="One audited access: who, what, which patient, outcome, grounds.")
class AuditEvent(Node):
    id: strawberry.ID
    recorded_at: datetime
    action: AuditAction
    outcome: AuditOutcome
    operation: str
    resource_type: str
    resource_id: strawberry.ID | None
    patient_id: strawberry.ID | None
    client_id: str
    subject: str
    purpose: str | None
    consent_ids: list[strawberry.ID]
    detail_code: str | None
    record: strawberry.Private[domain.AuditEvent]

    @classmethod
    def from_domain(cls, event: domain.AuditEvent) -> AuditEvent:
        record = event.record
        return cls(
            id=to_id(event.id),
            recorded_at=event.recorded_at,
            action=record.action,
            outcome=record.outcome,
            operation=record.operation,
            resource_type=record.resource_type,
            resource_id=None if record.resource_id is None else to_id(record.resource_id),
            patient_id=None if record.patient_id is None else to_id(record.patient_id),
            client_id=record.client_id,
            subject=record.subject,
            purpose=record.purpose,
            consent_ids=[to_id(c) for c in record.consent_ids],
            detail_code=record.detail_code,
            record=event,
        )

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_audit_event(self.record))

    @strawberry.field(description="The organization whose client made the access.")
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.record.organization_id)
