"""What a use case collects (domain events) and records (audit records) the unit of work writes
at commit: one audit INSERT and one outbox INSERT before COMMIT, in the order given; a rollback
discards them with the change. A shared transaction hands them to the one that commits."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sql_statements import StatementCountingPool

from api.db.uow import PostgresUnitOfWork
from api.domain.audit import AuditAction, AuditOutcome, AuditRecord
from api.domain.events import DomainEvent
from api.services.transactions import SharedTransaction


def _event(name: str, aggregate_id: uuid.UUID) -> DomainEvent:
    return DomainEvent(name, "Referral", aggregate_id, (uuid.uuid4(),), {"version": 1})


def _record(operation: str, resource_id: uuid.UUID, outcome: AuditOutcome) -> AuditRecord:
    return AuditRecord(
        action=AuditAction.UPDATE,
        outcome=outcome,
        operation=operation,
        resource_type="Referral",
        resource_id=resource_id,
        patient_id=None,
        client_id="unit-of-work-test",
        organization_id=uuid.uuid4(),
        subject="unit-of-work-test",
        purpose=None,
        consent_ids=(),
        detail_code=None,
        source_ip=None,
        trace_id=None,
    )


async def _events_of(pool: asyncpg.Pool, aggregate_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT event_type FROM outbox WHERE aggregate_id = $1 ORDER BY id", aggregate_id
    )
    return [row["event_type"] for row in rows]


async def _audit_of(pool: asyncpg.Pool, resource_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT operation, outcome FROM audit_events WHERE resource_id = $1 ORDER BY recorded_at",
        resource_id,
    )
    return [(row["operation"], row["outcome"]) for row in rows]


async def test_commit_writes_what_was_collected_in_one_insert_per_table_in_order(
    pool: asyncpg.Pool,
) -> None:
    subject = uuid.uuid4()
    counting = StatementCountingPool(pool)
    uow = PostgresUnitOfWork(counting)  # type: ignore[arg-type]
    async with uow:
        uow.record(_record("first", subject, AuditOutcome.SUCCESS))
        uow.collect(_event("One", subject), _event("Two", subject))
        uow.record_denial(_record("refused", subject, AuditOutcome.DENIED))
        uow.record(_record("second", subject, AuditOutcome.SUCCESS))
        uow.collect(_event("Three", subject))
        assert await _events_of(pool, subject) == []  # nothing written before commit
        await uow.commit()

    assert await _events_of(pool, subject) == ["One", "Two", "Three"]
    assert await _audit_of(pool, subject) == [
        ("first", "success"),
        ("second", "success"),
        ("refused", "denied"),
    ]
    inserts = [s for s in counting.statements if s.lstrip().upper().startswith(("INSERT", "WITH"))]
    assert len(inserts) == 2, counting.statements
    assert counting.statements[-1].strip().upper() == "COMMIT;"


async def test_a_rollback_discards_what_was_collected_but_keeps_denials(
    pool: asyncpg.Pool,
) -> None:
    subject = uuid.uuid4()
    uow = PostgresUnitOfWork(pool)
    with pytest.raises(RuntimeError):
        async with uow:
            uow.record(_record("changed", subject, AuditOutcome.SUCCESS))
            uow.collect(_event("Changed", subject))
            uow.record_denial(_record("refused", subject, AuditOutcome.DENIED))
            raise RuntimeError("the use case failed")
    assert await _events_of(pool, subject) == []
    assert await _audit_of(pool, subject) == [("refused", "denied")]

    # Entered again, the unit of work starts empty.
    async with uow:
        await uow.commit()
    assert await _events_of(pool, subject) == []
    assert await _audit_of(pool, subject) == [("refused", "denied")]


async def test_a_shared_transaction_hands_its_events_and_records_to_the_outer_one(
    pool: asyncpg.Pool,
) -> None:
    subject = uuid.uuid4()
    outer = PostgresUnitOfWork(pool)
    async with outer:
        shared = SharedTransaction(outer)
        async with shared:
            shared.record(_record("inner", subject, AuditOutcome.SUCCESS))
            shared.collect(_event("Inner", subject))
            await shared.commit()  # the outer one decides
        assert await _events_of(pool, subject) == []
        outer.collect(_event("Outer", subject))
        await outer.commit()
    assert await _events_of(pool, subject) == ["Inner", "Outer"]
    assert await _audit_of(pool, subject) == [("inner", "success")]
