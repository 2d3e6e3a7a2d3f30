"""Peer supporters, their certifications, and who may be assigned a referral."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

from api.domain.errors import SupporterUnavailable


class LivedExperience(StrEnum):
    MENTAL_HEALTH = "mental_health"
    SUBSTANCE_USE = "substance_use"
    FAMILY = "family"
    YOUTH = "youth"
    VETERAN = "veteran"
    LGBTQ = "lgbtq"
    JUSTICE_INVOLVED = "justice_involved"
    HOMELESSNESS = "homelessness"


class CertificationSubtype(StrEnum):
    MENTAL_HEALTH = "mental_health"
    SUBSTANCE_USE = "substance_use"
    YOUTH = "youth"
    FAMILY = "family"
    GENERAL = "general"


class CertificationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class SupervisorKind(StrEnum):
    PEER = "peer"
    CLINICAL = "clinical"


@dataclass(frozen=True)
class Certification:
    type: str
    subtype: CertificationSubtype
    issuing_body: str
    jurisdiction: str
    number: str
    status: CertificationStatus
    issued_on: date
    expires_on: date | None
    last_verified_on: date | None

    def is_valid_on(self, day: date) -> bool:
        return (
            self.status is CertificationStatus.ACTIVE
            and self.issued_on <= day
            and (self.expires_on is None or day <= self.expires_on)
        )


@dataclass(frozen=True)
class PeerSupporter:
    id: UUID
    organization_id: UUID
    display_name: str
    lived_experience: tuple[LivedExperience, ...]
    languages: tuple[str, ...]
    certifications: tuple[Certification, ...]
    supervisor_name: str | None
    supervisor_kind: SupervisorKind | None
    max_caseload: int
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime

    def has_valid_certification(self, day: date) -> bool:
        return any(cert.is_valid_on(day) for cert in self.certifications)


def check_assignable(supporter: PeerSupporter, current_caseload: int, day: date) -> None:
    """Only an active supporter with an unexpired certification and free caseload is assignable."""
    if not supporter.active:
        raise SupporterUnavailable("the peer supporter is not active")
    if not supporter.has_valid_certification(day):
        raise SupporterUnavailable("the peer supporter has no valid (unexpired) certification")
    if current_caseload >= supporter.max_caseload:
        raise SupporterUnavailable(
            f"the peer supporter's caseload is full ({current_caseload}/{supporter.max_caseload})"
        )
