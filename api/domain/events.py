"""Domain events (past tense), written to the outbox in the transaction of the change.

Payloads carry ids, statuses and codes only: never PHI.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from api.domain.errors import Invalid

_CURSOR = re.compile(r"e([1-9][0-9]{0,17})")


@dataclass(frozen=True)
class DomainEvent:
    event_type: str
    aggregate_type: str
    aggregate_id: UUID
    organization_ids: tuple[UUID, ...]
    payload: dict[str, Any] = field(default_factory=dict)


def changed(
    aggregate_type: str, aggregate_id: UUID, organization_id: UUID, version: int
) -> DomainEvent:
    """`<type>Changed`: an organization's directory record (program, supporter, location) was
    created or replaced, now at `version`."""
    return DomainEvent(
        f"{aggregate_type}Changed",
        aggregate_type,
        aggregate_id,
        (organization_id,),
        {"version": version},
    )


def encode_cursor(position: int) -> str:
    """The opaque cursor of the event at `position` (its place in commit order)."""
    return base64.urlsafe_b64encode(f"e{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "after") -> int:
    """The position an `encode_cursor` cursor names; anything else is invalid input."""
    match = None
    if len(cursor) <= 32:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True)
            match = _CURSOR.fullmatch(raw.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeError):
            pass
    if match is None:
        raise Invalid("the cursor is not one this API issued", field=field)
    return int(match[1])


@dataclass(frozen=True)
class PublishedEvent:
    """An event as the outbox holds it after its transaction committed."""

    # Its place in commit order, numbered after commit (api/db/outbox.py); None until then.
    position: int | None
    event_id: UUID  # what receivers deduplicate on
    occurred_at: datetime
    event: DomainEvent

    @property
    def sequenced(self) -> int:
        """`position`, for events read in commit order (which always have one)."""
        assert self.position is not None, "read in commit order (api/db/outbox.py)"
        return self.position
