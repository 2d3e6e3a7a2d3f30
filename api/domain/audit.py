"""Audit events: who did what to which patient's data, and on what grounds (IHE BALP spirit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.consents import Purpose

# Purpose of use (HL7 v3-ActReason) recorded with every permitted access:
# - a disclosure resting on consents: the purposes those consents allow (treatment -> TREAT,
#   care_coordination -> CAREMGT), several joined by a space in code order;
# - an organization acting on its own records (its patients, what it wrote, its own writes):
#   HOPERAT (healthcare operations), since no consent had to state a purpose;
# - a refusal: none, because nothing was disclosed and the request stated no purpose.
PURPOSE_OF_USE: dict[Purpose, str] = {
    Purpose.TREATMENT: "TREAT",
    Purpose.CARE_COORDINATION: "CAREMGT",
}
OWN_RECORDS_PURPOSE = "HOPERAT"
ACT_REASON_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def purpose_of_use(consent_purposes: frozenset[Purpose] | None) -> str:
    """The v3-ActReason code(s) for an access resting on consents with these purposes, or on
    the caller's own records when `consent_purposes` is None or empty."""
    if not consent_purposes:
        return OWN_RECORDS_PURPOSE
    return " ".join(sorted(PURPOSE_OF_USE[p] for p in consent_purposes))


class AuditAction(StrEnum):
    """FHIR AuditEvent.action."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    DENIED = "denied"


@dataclass(frozen=True)
class AuditRecord:
    """What a use case asks to be recorded; the repository adds the id and the time."""

    action: AuditAction
    outcome: AuditOutcome
    operation: str
    resource_type: str
    resource_id: UUID | None
    patient_id: UUID | None
    client_id: str
    organization_id: UUID
    subject: str
    purpose: str | None = None
    consent_ids: tuple[UUID, ...] = ()
    detail_code: str | None = None
    source_ip: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    id: UUID
    recorded_at: datetime
    record: AuditRecord
