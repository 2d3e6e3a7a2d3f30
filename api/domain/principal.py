"""Who is calling: the authenticated client, its organization and what it was granted."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from api.domain.scopes import Scope


@dataclass(frozen=True)
class Principal:
    client_id: str
    organization_id: UUID
    scopes: tuple[Scope, ...]
    subject: str
    token_id: str | None = None
    source_ip: str | None = None
    trace_id: str | None = None
    purpose: str | None = field(default=None)
    # A peer supporter signed in to the console: party only to the referrals assigned to them.
    caseload_of: UUID | None = None
