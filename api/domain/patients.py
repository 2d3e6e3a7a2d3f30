"""Patients (participants). Every field beyond the id is PHI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from api.domain.verbatim import NOTHING_KEPT, Verbatim


class Gender(StrEnum):
    """FHIR administrative-gender."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PatientIdentifier:
    system: str
    value: str


@dataclass(frozen=True)
class Patient:
    id: UUID
    managing_organization_id: UUID
    identifiers: tuple[PatientIdentifier, ...]
    given_name: str
    family_name: str
    birth_date: date | None
    gender: Gender
    phone: str | None
    email: str | None
    preferred_language: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    # The source document's elements as sent (names, addresses, extensions...): the columns
    # above are derived from them for rules, search and GraphQL. Unhashable, so out of hash.
    verbatim: Verbatim = field(default_factory=lambda: NOTHING_KEPT, hash=False)

    def held_by(self, organization_id: UUID) -> bool:
        """Whether this organization holds the record: it alone records the patient's consents
        and their signed forms."""
        return self.managing_organization_id == organization_id
