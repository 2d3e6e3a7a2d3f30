"""Outbox fan-out: PostgreSQL LISTEN/NOTIFY to in-process subscribers.

A change commits its outbox row together with `NOTIFY peerbridge_outbox, '<outbox id>'`
(api/db/outbox.py). One listener connection per process hears the ids, reads those rows once,
and offers each event to the subscribers of the organizations it names. Every subscriber has a
bounded queue: one that falls behind is dropped with `EventsDropped` instead of slowing the
others or growing memory. When the listener connection is lost, notifications sent meanwhile
are lost too, so every subscriber is dropped the same way and the listener reconnects.

This is live, best-effort delivery. What a subscriber may see of an event is decided by the
services when it is delivered, not here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from uuid import UUID

import asyncpg

from api.db.outbox import OUTBOX_CHANNEL, published_events
from api.domain.errors import EventsDropped
from api.domain.events import PublishedEvent

DEFAULT_QUEUE_SIZE = 100
_LOST = -1  # queued when a listener connection closes: not an outbox id
_BATCH = 500
_RECONNECT_MAX_S = 30.0
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_log = logging.getLogger(__name__)

Wants = Callable[[PublishedEvent], bool]
Connect = Callable[[], Awaitable[Any]]  # a new asyncpg connection of its own


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
            self.close(EventsDropped("this subscriber fell behind and was dropped"))
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
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        heartbeat_s: float = 15.0,
        reconnect_s: float = 1.0,
    ) -> None:
        self._connect = connect
        self._queue_size = queue_size
        self._heartbeat_s = heartbeat_s
        self._reconnect_s = reconnect_s
        self._subscribers: dict[UUID, set[Subscriber]] = defaultdict(set)
        self._positions: asyncio.Queue[int] = asyncio.Queue()

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

    def subscribers_of(self, organization_id: UUID) -> int:
        """How many live subscriptions the organization has in this process."""
        return len(self._subscribers.get(organization_id, ()))

    async def _listen(self) -> Any:
        connection = await self._connect()
        try:
            await connection.add_listener(OUTBOX_CHANNEL, self._notified)
            connection.add_termination_listener(self._terminated)
        except BaseException:
            connection.terminate()
            raise
        return connection

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        try:
            self._positions.put_nowait(int(payload))
        except ValueError:
            _log.warning("ignored an outbox notification that is not an outbox id")

    def _terminated(self, connection: Any) -> None:
        self._positions.put_nowait(_LOST)

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
        while True:
            try:
                first = await asyncio.wait_for(self._positions.get(), self._heartbeat_s)
            except TimeoutError:
                # Quiet a while: make sure the connection still hears notifications.
                await connection.execute("SELECT 1")
                continue
            positions = [first]
            while len(positions) < _BATCH and not self._positions.empty():
                positions.append(self._positions.get_nowait())
            if _LOST in positions:
                if connection.is_closed():
                    raise ConnectionResetError("the listener connection closed")
                positions = [p for p in positions if p != _LOST]  # an earlier connection's
            if positions and self._subscribers:
                self._deliver(await published_events(connection, positions))

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
