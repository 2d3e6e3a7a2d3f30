"""Outbox fan-out: PostgreSQL LISTEN/NOTIFY to in-process subscribers, resumable by cursor.

A change commits its outbox row together with `NOTIFY peerbridge_outbox` (api/db/outbox.py).
One listener connection per process hears it, numbers the committed events in commit order
(`sequence`), and reads, once for all its subscribers, the events numbered since the last it
read; then it offers each event to the subscribers of the organizations it names. Every
subscriber has a bounded queue: one that falls behind is dropped with `EventsDropped` instead of
slowing the others or growing memory. When the listener connection is lost, every subscriber is
dropped the same way and the listener reconnects.

Every event carries its position. A subscriber that resumes `after` one is registered for live
events first and then replays the events numbered after its cursor from the database: what was
numbered before the replay read is in the replay, what is numbered after it arrives live, and
live events at or before the last replayed position are skipped (no gap, no duplicate).

What a subscriber may see of an event is decided by the services when it is delivered, not here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any
from uuid import UUID

import asyncpg

from api.db.outbox import OUTBOX_CHANNEL, holds, sequence, sequenced_events
from api.domain.errors import EventsDropped, EventsExpired
from api.domain.events import PublishedEvent

DEFAULT_QUEUE_SIZE = 100
_LOST = -1  # queued when a listener connection closes
_WOKEN = 0  # queued for a notification (its payload, an outbox id, is not needed)
_BATCH = 500
_RECONNECT_MAX_S = 30.0
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_log = logging.getLogger(__name__)

Wants = Callable[[PublishedEvent], bool]
Connect = Callable[[], Awaitable[Any]]  # a new asyncpg connection of its own
Acquire = Callable[[], AbstractAsyncContextManager[Any]]  # a pooled connection, for replays


class Subscriber:
    """One subscription's events, in commit order, until it ends or is dropped."""

    def __init__(self, organization_id: UUID, wants: Wants, queue_size: int) -> None:
        self.organization_id = organization_id
        self.wants = wants
        self._queue_size = queue_size
        # Bounded by `offer`, so the closing error always finds room behind the events.
        self._queue: asyncio.Queue[PublishedEvent | EventsDropped] = asyncio.Queue()
        self.closed = False

    def offer(self, event: PublishedEvent) -> None:
        if self.closed or not self.wants(event):
            return
        if self._queue.qsize() >= self._queue_size:
            self.close(
                EventsDropped(
                    "this subscriber fell behind and was dropped: resubscribe after the last "
                    "event's cursor"
                )
            )
            return
        self._queue.put_nowait(event)

    def close(self, error: EventsDropped) -> None:
        """End the stream with `error` after the events already queued."""
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(error)

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> PublishedEvent:
        item = await self._queue.get()
        if isinstance(item, EventsDropped):
            raise item
        return item


class OutboxFanOut:
    """The process's one outbox listener and its subscribers."""

    def __init__(
        self,
        connect: Connect,
        acquire: Acquire,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        heartbeat_s: float = 15.0,
        reconnect_s: float = 1.0,
    ) -> None:
        self._connect = connect
        self._acquire = acquire
        self._queue_size = queue_size
        self._heartbeat_s = heartbeat_s
        self._reconnect_s = reconnect_s
        self._subscribers: dict[UUID, set[Subscriber]] = defaultdict(set)
        self._wakeups: asyncio.Queue[int] = asyncio.Queue()
        self._position: int | None = None  # the last position read

    @asynccontextmanager
    async def running(self) -> AsyncIterator[OutboxFanOut]:
        """Listen (the first connection is made before this yields), and stop on exit."""
        connection = await self._listen()
        task = asyncio.create_task(self._run(connection), name="outbox fan-out")
        try:
            yield self
        finally:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            self._drop_all("the server is shutting down")

    @contextmanager
    def subscribe(self, organization_id: UUID, wants: Wants) -> Iterator[Subscriber]:
        """Events naming `organization_id` that `wants` accepts, while the block runs."""
        subscriber = Subscriber(organization_id, wants, self._queue_size)
        self._subscribers[organization_id].add(subscriber)
        try:
            yield subscriber
        finally:
            subscribers = self._subscribers[organization_id]
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[organization_id]

    @asynccontextmanager
    async def follow(
        self, organization_id: UUID, wants: Wants, after: int | None
    ) -> AsyncIterator[AsyncIterator[PublishedEvent]]:
        """`subscribe` to the events that commit from now on, or, `after` a position, replay
        the settled events since it first; raises `EventsExpired` (before any event) when the
        outbox no longer holds `after`."""
        with self.subscribe(organization_id, wants) as subscriber:
            if after is None:
                yield self._from_now(subscriber)
            else:
                yield self._resumed(subscriber, after)

    async def _from_now(self, subscriber: Subscriber) -> AsyncIterator[PublishedEvent]:
        # An event that committed before this moment may be numbered (and offered) after it;
        # once numbered here, everything committed before has a position at or below `now`.
        async with self._acquire() as connection:
            now = await sequence(connection)
        async for event in subscriber:
            if event.sequenced > now:
                yield event

    async def _resumed(self, subscriber: Subscriber, after: int) -> AsyncIterator[PublishedEvent]:
        # `subscriber` already hears live events: everything the replay below does not read
        # is numbered after it and queued there.
        async with self._acquire() as connection:
            if not await holds(connection, after):
                raise EventsExpired(
                    "the event this cursor names is no longer held (past the retention window)"
                )
        last = after
        while True:
            async with self._acquire() as connection:
                page = await sequenced_events(
                    connection, last, _BATCH, subscriber.organization_id
                )
            for event in page:
                last = event.sequenced
                if subscriber.wants(event):
                    yield event
            if len(page) < _BATCH:
                break
        async for event in subscriber:
            if event.sequenced > last:
                yield event

    def subscribers_of(self, organization_id: UUID) -> int:
        """How many live subscriptions the organization has in this process."""
        return len(self._subscribers.get(organization_id, ()))

    async def _listen(self) -> Any:
        connection = await self._connect()
        try:
            await connection.add_listener(OUTBOX_CHANNEL, self._notified)
            connection.add_termination_listener(self._terminated)
            if self._position is None:
                # Only what is numbered from here on is live; anything earlier is a replay's. A
                # reconnect goes on from where the lost connection stopped reading instead, so a
                # subscriber that resumed meanwhile misses nothing between its replay and now.
                self._position = await sequence(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._wakeups.put_nowait(_WOKEN)

    def _terminated(self, connection: Any) -> None:
        self._wakeups.put_nowait(_LOST)

    async def _run(self, connection: Any) -> None:
        while True:
            try:
                await self._serve(connection)
            except _CONNECTION_ERRORS as error:
                _log.warning("outbox listener lost its connection (%s)", type(error).__name__)
            except Exception as error:
                _log.error("outbox listener failed (%s); restarting", type(error).__name__)
            finally:
                await self._release(connection)
            self._drop_all("the live event stream was interrupted")
            connection = await self._reconnect()

    async def _serve(self, connection: Any) -> None:
        # Notifications sent while no connection listened are lost: read once to begin with.
        await self._read(connection)
        while True:
            try:
                wakeups = [await asyncio.wait_for(self._wakeups.get(), self._heartbeat_s)]
            except TimeoutError:
                # Quiet a while: make sure the connection still hears notifications.
                await connection.execute("SELECT 1")
                continue
            while not self._wakeups.empty():
                wakeups.append(self._wakeups.get_nowait())
            if _LOST in wakeups and connection.is_closed():
                raise ConnectionResetError("the listener connection closed")
            # (a _LOST from an earlier connection is stale: ignored)
            await self._read(connection)

    async def _read(self, connection: Any) -> None:
        """Number what committed, then offer every event numbered since the last read."""
        assert self._position is not None, "set when the connection started listening"
        await sequence(connection)
        while True:
            events = await sequenced_events(connection, self._position, _BATCH)
            if events:
                self._position = events[-1].sequenced
                self._deliver(events)
            if len(events) < _BATCH:
                return

    def _deliver(self, events: list[PublishedEvent]) -> None:
        for event in events:
            organizations = dict.fromkeys(event.event.organization_ids)
            for organization_id in organizations:
                for subscriber in list(self._subscribers.get(organization_id, ())):
                    subscriber.offer(event)

    def _drop_all(self, reason: str) -> None:
        for subscribers in self._subscribers.values():
            for subscriber in subscribers:
                subscriber.close(EventsDropped(reason))

    async def _reconnect(self) -> Any:
        delay = self._reconnect_s
        while True:
            await asyncio.sleep(delay)
            try:
                return await self._listen()
            except _CONNECTION_ERRORS as error:
                _log.warning("outbox listener cannot reconnect yet (%s)", type(error).__name__)
                delay = min(delay * 2, _RECONNECT_MAX_S)

    async def _release(self, connection: Any) -> None:
        connection.remove_termination_listener(self._terminated)
        try:
            await connection.close(timeout=5)
        except _CONNECTION_ERRORS:
            connection.terminate()
