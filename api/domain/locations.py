"""Where a peer organization's programs meet (FHIR Location): a hall, a clinic room, a van.

Dates inside an address or contact point are kept as their source wrote them (a year, a day or
an instant), since nothing here computes with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.referrals import Coding
from api.domain.verbatim import NOTHING_KEPT, Verbatim

# The codes FHIR R4 requires (required bindings) for the coded strings below.
ADDRESS_USES = frozenset({"home", "work", "temp", "old", "billing"})
ADDRESS_TYPES = frozenset({"postal", "physical", "both"})
CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
CONTACT_USES = frozenset({"home", "work", "temp", "old", "mobile"})
# A FHIR dateTime: a year, a month, a day, or an instant with its zone.
DATE_TIME = re.compile(
    r"[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?"
)


class LocationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    INACTIVE = "inactive"


class LocationMode(StrEnum):
    INSTANCE = "instance"  # one specific place
    KIND = "kind"  # a class of places (e.g. "any of our vans")


@dataclass(frozen=True)
class Period:
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class Address:
    use: str | None = None  # home | work | temp | old | billing
    type: str | None = None  # postal | physical | both
    text: str | None = None
    lines: tuple[str, ...] = ()
    city: str | None = None
    district: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    period: Period | None = None


@dataclass(frozen=True)
class ContactPoint:
    system: str | None = None  # phone | fax | email | pager | url | sms | other
    value: str | None = None
    use: str | None = None  # home | work | temp | old | mobile
    rank: int | None = None
    period: Period | None = None


@dataclass(frozen=True)
class Position:
    longitude: float
    latitude: float
    altitude: float | None = None


@dataclass(frozen=True)
class Concept:
    """A coded concept: codings and/or a text."""

    codings: tuple[Coding, ...] = ()
    text: str | None = None


@dataclass(frozen=True)
class Location:
    id: UUID
    organization_id: UUID
    name: str
    description: str | None
    status: LocationStatus | None
    mode: LocationMode | None
    physical_type: Concept | None
    address: Address | None
    telecom: tuple[ContactPoint, ...]
    position: Position | None
    version: int
    created_at: datetime
    updated_at: datetime
    # (a MappingProxyType is unhashable, which dataclasses take for mutable: hence the factory)
    verbatim: Verbatim = field(default_factory=lambda: NOTHING_KEPT)
