"""Audit trail entries ↔ FHIR AuditEvent (IHE BALP spirit): who, what, which patient, outcome,
purpose, consents used. Never PHI: patients and records appear by id only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent

from api.domain.audit import (
    ACT_REASON_SYSTEM,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditRecord,
)
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    coding,
    concept,
    extension_value,
    finish,
    instant,
    parse_instant,
    ref,
    ref_id,
)

_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OUTCOME = {AuditOutcome.SUCCESS: "0", AuditOutcome.DENIED: "4"}
_OUTCOME_OF = {code: outcome for outcome, code in _OUTCOME.items()}
_PATIENT_ROLE, _RECORD_ROLE, _CONSENT_ROLE = "1", "4", "13"
EXT_TRACE = codes.ext("trace-id")


def _entity(role: str, entity_type: str, what: Json, name: str | None = None) -> Json:
    return {
        "what": what,
        "type": coding(_ENTITY_TYPE, entity_type),
        "role": coding(_OBJECT_ROLE, role),
        "name": name,
    }


def to_fhir_audit_event(event: AuditEvent) -> Json:
    record = event.record
    entities = []
    if record.patient_id:
        entities.append(_entity(_PATIENT_ROLE, "1", ref("Patient", record.patient_id)))
    entities.append(
        _entity(
            _RECORD_ROLE,
            "2",
            {"identifier": {"value": str(record.resource_id)}} if record.resource_id else {},
            record.resource_type,
        )
    )
    entities.extend(_entity(_CONSENT_ROLE, "2", ref("Consent", c)) for c in record.consent_ids)
    return finish(
        FhirAuditEvent,
        {
            "resourceType": "AuditEvent",
            "id": str(event.id),
            "extension": [{"url": EXT_TRACE, "valueString": record.trace_id}]
            if record.trace_id
            else [],
            "type": coding(codes.AUDIT_EVENT_TYPE, "rest", "RESTful Operation"),
            "subtype": [coding(codes.CS_OPERATION, record.operation)],
            "action": record.action.value,
            "recorded": instant(event.recorded_at),
            "outcome": _OUTCOME[record.outcome],
            "outcomeDesc": record.detail_code,
            "purposeOfEvent": [
                concept(ACT_REASON_SYSTEM, code) for code in (record.purpose or "").split()
            ],
            "agent": [
                {
                    "who": {
                        **ref("Organization", record.organization_id),
                        "identifier": {"system": codes.ID_CLIENT, "value": record.client_id},
                    },
                    "altId": record.subject,
                    "requestor": True,
                    "network": {"address": record.source_ip, "type": "2"}
                    if record.source_ip
                    else None,
                }
            ],
            "source": {"observer": {"display": "PeerBridge"}},
            "entity": entities,
        },
    )


def _role(entity: Mapping[str, Any]) -> str | None:
    role = entity.get("role") or {}
    return role.get("code") if role.get("system") == _OBJECT_ROLE else None


def from_fhir_audit_event(resource: Mapping[str, Any]) -> AuditEvent:
    agent = resource["agent"][0]
    entities = resource.get("entity", ())
    patients = [e for e in entities if _role(e) == _PATIENT_ROLE]
    records = [e for e in entities if _role(e) == _RECORD_ROLE]
    consents = [e for e in entities if _role(e) == _CONSENT_ROLE]
    record_id = (records[0].get("what") or {}).get("identifier", {}).get("value")
    purposes = [
        c.get("code") or concept.get("text")
        for concept in resource.get("purposeOfEvent", ())
        for c in (concept.get("coding") or [{}])
    ]
    return AuditEvent(
        id=UUID(resource["id"]),
        recorded_at=parse_instant(resource["recorded"], "AuditEvent.recorded"),
        record=AuditRecord(
            action=AuditAction(resource["action"]),
            outcome=_OUTCOME_OF[resource["outcome"]],
            operation=resource["subtype"][0]["code"],
            resource_type=records[0].get("name", ""),
            resource_id=UUID(record_id) if record_id else None,
            patient_id=ref_id(patients[0]["what"], "Patient", "AuditEvent.entity")
            if patients
            else None,
            client_id=agent["who"]["identifier"]["value"],
            organization_id=ref_id(agent["who"], "Organization", "AuditEvent.agent[0].who"),
            subject=agent.get("altId", ""),
            purpose=" ".join(p for p in purposes if p) or None,
            consent_ids=tuple(ref_id(c["what"], "Consent", "AuditEvent.entity") for c in consents),
            detail_code=resource.get("outcomeDesc"),
            source_ip=(agent.get("network") or {}).get("address"),
            trace_id=extension_value(resource, EXT_TRACE, "valueString"),
        ),
    )
