"""The fan-out's subscriber queues: bounded, in order, and a slow consumer is dropped with an
error after the events it already holds (no database: the queues alone)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from api.domain.errors import EventsDropped
from api.domain.events import DomainEvent, PublishedEvent
from api.events.fanout import Subscriber


def _event(position: int, aggregate_type: str = "Referral") -> PublishedEvent:
    organization = uuid.uuid4()
    return PublishedEvent(
        position,
        uuid.uuid4(),
        datetime.now(UTC),
        DomainEvent("ReferralAccepted", aggregate_type, uuid.uuid4(), (organization,), {}),
    )


async def test_a_subscriber_that_falls_behind_gets_its_queued_events_then_an_error() -> None:
    subscriber = Subscriber(uuid.uuid4(), lambda event: True, queue_size=2)
    for position in (1, 2, 3, 4):
        subscriber.offer(_event(position))

    received = [(await anext(subscriber)).position for _ in range(2)]
    with pytest.raises(EventsDropped) as dropped:
        await anext(subscriber)

    assert received == [1, 2]
    assert dropped.value.code == "EVENTS_DROPPED"
    assert subscriber.closed


async def test_a_subscriber_is_offered_only_the_events_it_wants() -> None:
    subscriber = Subscriber(
        uuid.uuid4(), lambda event: event.event.aggregate_type == "Referral", queue_size=1
    )
    subscriber.offer(_event(1, "Consent"))
    subscriber.offer(_event(2))

    assert (await anext(subscriber)).position == 2
    assert not subscriber.closed
