"""Peer programs a peer organization offers (FHIR HealthcareService)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class ProgramKind(StrEnum):
    SUPPORT_GROUP = "support_group"
    ONE_ON_ONE_MENTORING = "one_on_one_mentoring"
    ONLINE_COMMUNITY = "online_community"
    STRUCTURED_PROGRAM = "structured_program"


class DeliveryMode(StrEnum):
    IN_PERSON = "in_person"
    VIRTUAL = "virtual"
    PHONE = "phone"


@dataclass(frozen=True)
class PeerProgram:
    id: UUID
    organization_id: UUID
    name: str
    kind: ProgramKind
    description: str
    languages: tuple[str, ...]
    delivery_modes: tuple[DeliveryMode, ...]
    eligibility: str
    capacity: int | None
    accepting_referrals: bool
    substance_use_focus: bool
    version: int
    created_at: datetime
    updated_at: datetime
    location_ids: tuple[UUID, ...] = ()  # where it meets (the owner's Locations), in order
