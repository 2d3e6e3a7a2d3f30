"""Several use cases in one transaction (FHIR transaction Bundles, a Task update that both moves
and reassigns a referral): all of them commit together or none does.

`SharedTransaction` wraps a unit of work that is already open. Use cases run against it exactly
as against a fresh one; their `async with` and `commit()` become no-ops, so the outer owner of
the transaction decides. What they collect and record, and their refusals, go to the real unit
of work: written when it commits (denials survive its rollback).
"""

from __future__ import annotations

from typing import Any

from api.domain.audit import AuditRecord
from api.domain.events import DomainEvent
from api.services.repositories import UnitOfWork


class SharedTransaction:
    def __init__(self, outer: UnitOfWork) -> None:
        self._outer = outer

    def __getattr__(self, name: str) -> Any:
        # Repositories are bound when the outer unit of work opens: look them up each time.
        return getattr(self._outer, name)

    async def __aenter__(self) -> SharedTransaction:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def commit(self) -> None:
        return None

    def collect(self, *events: DomainEvent) -> None:
        self._outer.collect(*events)

    def record(self, *records: AuditRecord) -> None:
        self._outer.record(*records)

    def record_denial(self, record: AuditRecord) -> None:
        self._outer.record_denial(record)

    def autocommit(self) -> SharedTransaction:
        # Already inside the outer transaction: a read joins it, like everything else here.
        return self
