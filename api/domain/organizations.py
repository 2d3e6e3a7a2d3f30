"""Organizations are the tenants: clinics and peer-support organizations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class OrganizationKind(StrEnum):
    CLINIC = "clinic"
    PEER_ORGANIZATION = "peer_organization"


@dataclass(frozen=True)
class Organization:
    id: UUID
    name: str
    kind: OrganizationKind
    npi: str | None
    active: bool
    version: int
    created_at: datetime
    updated_at: datetime
