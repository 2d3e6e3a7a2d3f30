"""Parsed search forms: GraphQL arguments and FHIR search parameters both map onto these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.locations import LocationStatus
from api.domain.procedures import ProcedureStatus
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.referrals import Direction, Priority, ReferralStatus


class ReferralBox(StrEnum):
    """Which side of the caller's referrals: received (inbox), sent (outbox) or both."""

    INBOX = "inbox"
    OUTBOX = "outbox"
    ALL = "all"


@dataclass(frozen=True)
class ReferralFilter:
    box: ReferralBox = ReferralBox.ALL
    directions: frozenset[Direction] = frozenset()
    statuses: frozenset[ReferralStatus] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    program_id: UUID | None = None
    patient_id: UUID | None = None
    requester_organization_id: UUID | None = None
    performer_organization_id: UUID | None = None
    assigned_supporter_id: UUID | None = None
    updated_since: datetime | None = None  # exclusive, as FHIR `_lastUpdated=gt`
    updated_before: datetime | None = None  # exclusive, as FHIR `_lastUpdated=lt`
    ids: frozenset[UUID] = frozenset()
    # Token searches (each OR-ed): `system|code` or `code` on the ordered service and on the
    # categories sent; `system|value`, `|value` (no system) or `value` on the identifiers.
    service_codes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # With `categories`: referrals sent without categories match by these directions instead.
    category_directions: frozenset[Direction] = frozenset()
    identifiers: tuple[str, ...] = ()
    # The Task's code as its requester sent it (every referral's Task is also `fulfill`).
    task_codes: tuple[str, ...] = ()
    # True: still `requested` past its first-contact target; False: not (timeliness.py).
    overdue: bool | None = None


@dataclass(frozen=True)
class ProgramFilter:
    organization_id: UUID | None = None
    kinds: frozenset[ProgramKind] = frozenset()
    language: str | None = None
    delivery_mode: DeliveryMode | None = None
    accepting_referrals: bool | None = None
    updated_since: datetime | None = None  # exclusive
    updated_before: datetime | None = None  # exclusive
    location_ids: frozenset[UUID] = frozenset()  # meets at any of these
    ids: frozenset[UUID] = frozenset()


@dataclass(frozen=True)
class LocationFilter:
    """Program locations: names and postal codes match from their start, case-insensitively
    (FHIR string search) unless `name_exact`; cities and states match whole."""

    ids: frozenset[UUID] = frozenset()
    organization_id: UUID | None = None
    name: str | None = None
    name_exact: bool = False
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    statuses: frozenset[LocationStatus] = frozenset()
    updated_since: datetime | None = None  # exclusive
    updated_before: datetime | None = None  # exclusive


@dataclass(frozen=True)
class SupporterFilter:
    organization_id: UUID | None = None
    language: str | None = None
    lived_experience: str | None = None
    active: bool | None = None


@dataclass(frozen=True)
class ProcedureFilter:
    """FHIR `Procedure` search: tokens are `code` or `system|code`."""

    ids: frozenset[UUID] = frozenset()
    referral_ids: frozenset[UUID] = frozenset()
    patient_id: UUID | None = None
    performer_organization_id: UUID | None = None
    statuses: frozenset[ProcedureStatus] = frozenset()
    categories: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    updated_since: datetime | None = None  # exclusive
    updated_before: datetime | None = None  # exclusive
    performed_from: datetime | None = None  # the performed period ends at or after it
    performed_before: datetime | None = None  # the performed period starts before it
    # Only deliveries to patients of referrals assigned to this supporter (a caseload).
    caseload_of: UUID | None = None
