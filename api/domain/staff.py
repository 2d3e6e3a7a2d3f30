"""Staff accounts: people of an organization who sign in to the console."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class StaffRole(StrEnum):
    COORDINATOR = "coordinator"  # a peer organization's intake lead
    SUPPORTER = "supporter"  # a peer supporter: their own caseload only
    SUPERVISOR = "supervisor"  # supporters, certifications, program metrics
    CLINIC = "clinic"  # a clinic's staff: its sent referrals, read-only

    @property
    def for_clinics(self) -> bool:
        return self is StaffRole.CLINIC


@dataclass(frozen=True)
class StaffUser:
    id: UUID
    organization_id: UUID
    email: str
    role: StaffRole
    supporter_id: UUID | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True)
class ConsoleSession:
    """A signed-in browser: who, its CSRF token, and when it started and was last used."""

    user: StaffUser
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime
