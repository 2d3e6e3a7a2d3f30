"""Outbox positions follow commit order: an event that commits late behind one already read is
never skipped by a reader resuming from that one's position (api/db/outbox.py).

Two transactions interleave on real connections: the one that wrote first commits last."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from api.db.outbox import (
    PostgresOutboxRepository,
    holds,
    prune,
    sequence,
    sequenced_events,
)
from api.domain.errors import Invalid
from api.domain.events import DomainEvent, PublishedEvent, decode_cursor, encode_cursor


def _event(name: str) -> DomainEvent:
    return DomainEvent(name, "Referral", uuid.uuid4(), (uuid.uuid4(),), {})


async def _read(pool: asyncpg.Pool, after: int) -> list[PublishedEvent]:
    async with pool.acquire() as connection:
        await sequence(connection)
        return await sequenced_events(connection, after, 1000)


async def test_an_event_written_first_and_committed_last_comes_after_the_other_not_skipped(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        start = await sequence(connection)
    async with pool.acquire() as slow, pool.acquire() as fast:
        slow_transaction = slow.transaction()
        await slow_transaction.start()
        await PostgresOutboxRepository(slow).add_many([_event("Slow")])  # the lower outbox id
        async with fast.transaction():
            await PostgresOutboxRepository(fast).add_many([_event("Fast")])

        seen = await _read(pool, start)
        cursor = seen[-1].sequenced
        await slow_transaction.commit()
    after_cursor = await _read(pool, cursor)

    assert [e.event.event_type for e in seen] == ["Fast"]
    # An id-ordered cursor ("after Fast's id") would skip Slow for good.
    assert [e.event.event_type for e in after_cursor] == ["Slow"]
    assert after_cursor[0].sequenced > cursor
    assert await _outbox_id(pool, after_cursor[0]) < await _outbox_id(pool, seen[0])


async def _outbox_id(pool: asyncpg.Pool, event: PublishedEvent) -> int:
    outbox_id: int = await pool.fetchval(
        "SELECT id FROM outbox WHERE event_id = $1", event.event_id
    )
    return outbox_id


async def test_sequencers_in_several_connections_at_once_number_each_event_once_in_order(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as connection:
        start = await sequence(connection)
        await PostgresOutboxRepository(connection).add_many(
            [_event(f"E{n}") for n in range(300)]
        )

    async def sequence_once() -> int:
        async with pool.acquire() as connection:
            return await sequence(connection)

    lasts = await asyncio.gather(*(sequence_once() for _ in range(4)))
    events = await _read(pool, start)

    assert [e.event.event_type for e in events] == [f"E{n}" for n in range(300)]
    assert [e.sequenced for e in events] == list(range(start + 1, start + 301))
    assert set(lasts) == {start + 300}


async def test_a_pruned_event_is_no_longer_held(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        start = await sequence(connection)
        await PostgresOutboxRepository(connection).add_many([_event("Old"), _event("Kept")])
    old, kept = await _read(pool, start)
    async with pool.acquire() as connection:
        await connection.execute(
            "UPDATE outbox SET published_at = now(), created_at = now() - interval '8 days' "
            "WHERE position = $1",
            old.sequenced,
        )
        pruned = await prune(connection, 7)

        assert pruned == 1
        assert not await holds(connection, old.sequenced)
        assert await holds(connection, kept.sequenced)


@pytest.mark.parametrize(
    "cursor", ["", "x", "ZTEK", "ZTA", "MTIz", "ZS0x", "ZTE\x00", "A" * 100, "😀"]
)
def test_a_cursor_this_api_did_not_issue_is_invalid_input(cursor: str) -> None:
    with pytest.raises(Invalid) as refused:
        decode_cursor(cursor)
    assert refused.value.details[0].field == "after"


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(2**50 + 7)) == 2**50 + 7
