"""Domain events (past tense), written to the outbox in the transaction of the change.

Payloads carry ids, statuses and codes only: never PHI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class DomainEvent:
    event_type: str
    aggregate_type: str
    aggregate_id: UUID
    organization_ids: tuple[UUID, ...]
    payload: dict[str, Any] = field(default_factory=dict)
