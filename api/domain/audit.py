"""Audit events: who did what to which patient's data, and on what grounds (IHE BALP spirit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


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
