"""Domain events (past tense), written to the outbox in the transaction of the change.

Payloads carry ids, statuses and codes only: never PHI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class DomainEvent:
    event_type: str
    aggregate_type: str
    aggregate_id: UUID
    organization_ids: tuple[UUID, ...]
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedEvent:
    """An event as the outbox holds it after its transaction committed."""

    position: int  # the outbox row's id: increases with each insert, never reused
    event_id: UUID  # what receivers deduplicate on
    occurred_at: datetime
    event: DomainEvent
