"""An accounting of disclosures as a FHIR `collection` Bundle: one AuditEvent per disclosure (the
same mapping as the FHIR door's AuditEvent), then the Organizations involved (holder first) so a
reader can name the recipients. The patient appears by reference only."""

from __future__ import annotations

import uuid

from api.integrations.fhir.resources.audit import to_fhir_audit_event
from api.integrations.fhir.resources.datatypes import Json, instant
from api.integrations.fhir.resources.organizations import to_fhir_organization
from api.services.audit_accounting import Accounting


def to_fhir_accounting_bundle(accounting: Accounting, base_url: str) -> Json:
    """`base_url`: the FHIR base (e.g. https://peerbridge.example/fhir), for entry fullUrls."""
    base = base_url.rstrip("/")
    organizations = sorted(
        accounting.organizations, key=lambda org: (org.id != accounting.holder.id, org.name)
    )
    entries = [
        {"fullUrl": f"{base}/AuditEvent/{event.id}", "resource": to_fhir_audit_event(event)}
        for event in accounting.events
    ] + [
        {"fullUrl": f"{base}/Organization/{org.id}", "resource": to_fhir_organization(org)}
        for org in organizations
    ]
    bundle: Json = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "collection",
        "timestamp": instant(accounting.generated_at),
        "entry": entries,
    }
    return bundle
