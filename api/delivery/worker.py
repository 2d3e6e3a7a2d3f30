"""The delivery worker: outbox → deliveries → HTTP, at least once, any number of them at once.

One round: fan committed outbox rows out to deliveries, queue due heartbeats, then claim due
deliveries (api/db/deliveries.py leases them `FOR UPDATE SKIP LOCKED`) and send them
concurrently; repeat while there is work. Between rounds it sleeps until a NOTIFY (a change
committed, a subscription was created, a delivery was retried), the next retry falls due, or
the poll interval passes, whichever comes first. Once an hour it prunes delivered rows older
than the retention.

Logs name deliveries and subscriptions by id, and failures by HTTP status or error class:
never a body, a header value or an endpoint's query string.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from api.auth.kek import KeyEncryptionKey
from api.db import deliveries as queue
from api.db.outbox import OUTBOX_CHANNEL
from api.db.subscriptions import DELIVERY_CHANNEL
from api.db.uow import PostgresUnitOfWork
from api.domain.deliveries import (
    TOPICS,
    NotificationKind,
    PayloadContent,
    backoff_s,
    check_header,
)
from api.domain.errors import Invalid, Unavailable
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.resources.subscriptions import (
    SIGNATURE_HEADER,
    NotificationEvent,
    notification_bundle,
)
from api.integrations.fhir.rest.reads import referral_resource
from api.observability.metrics import DELIVERY_ATTEMPTS
from api.periodic import Periodic
from api.services import procedures
from api.services.subscriptions import (
    EndpointPolicy,
    check_endpoint_allowed,
    endpoint_policy,
    notification_referral,
    subscriber,
)
from api.settings import Settings

_log = logging.getLogger(__name__)

_FAN_OUT_BATCH = 500
_PRUNE_EVERY_S = 3600.0
_HEARTBEATS_EVERY_S = 1.0  # heartbeat periods are whole seconds
_RECONNECT_MAX_S = 30.0
_CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Connect = Callable[[], Awaitable[Any]]  # a new asyncpg connection of its own (for LISTEN)


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """`t=<unix time>,v1=<hex HMAC-SHA256 over "<t>." + body>`: the time is signed with the
    body, so a receiver can refuse an old notification replayed to it."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class DeliveryWorker:
    name = "delivery worker"

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: Settings,
        secrets_key: KeyEncryptionKey,
        connect: Connect,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._key = secrets_key
        self._connect = connect
        self._http = http
        self._base_url = f"{settings.base_url}/fhir"
        self._policy: EndpointPolicy = endpoint_policy(settings)
        self._wake = asyncio.Event()
        self._last_prune = 0.0
        self._last_heartbeats = 0.0

    async def run(self) -> None:
        """Deliver until cancelled."""
        owned_http = self._http is None
        http = self._http or httpx.AsyncClient(
            follow_redirects=False,
            # Headers and body go out in separate writes: without TCP_NODELAY the body waits
            # for the receiver's delayed ACK (40 ms on Linux).
            transport=httpx.AsyncHTTPTransport(
                socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            ),
        )
        listener = asyncio.create_task(self._listen(), name="delivery listener")
        # After a failed round (a database outage, a bug) what was claimed goes out again when
        # its lease ends; the next round follows after the poll interval.
        rounds = Periodic(
            "delivery round",
            self._settings.delivery_poll_interval_s,
            lambda: self.round(http),
            wait=self._sleep,
        )
        try:
            await rounds.run()
        finally:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener
            if owned_http:
                await http.aclose()

    async def round(self, http: httpx.AsyncClient) -> bool:
        """One pass over the queue; True when it found work (so another may follow at once)."""
        self._wake.clear()
        fanned = await queue.fan_out_outbox(self._pool, _FAN_OUT_BATCH)
        if time.monotonic() - self._last_heartbeats >= _HEARTBEATS_EVERY_S:
            self._last_heartbeats = time.monotonic()
            await queue.schedule_heartbeats(self._pool)
        claimed = await queue.claim(
            self._pool, self._settings.delivery_concurrency, self._settings.delivery_lease_s
        )
        if claimed:
            problems = await asyncio.gather(*(self._send(http, c) for c in claimed))
            sent = [c.delivery for c, problem in zip(claimed, problems, strict=True) if not problem]
            await queue.delivered(self._pool, sent)
            if sent:
                DELIVERY_ATTEMPTS.labels("sent").inc(len(sent))
            for claimed_one, problem in zip(claimed, problems, strict=True):
                if problem:
                    await self._record(claimed_one, problem)
        if time.monotonic() - self._last_prune > _PRUNE_EVERY_S:
            self._last_prune = time.monotonic()
            pruned = await queue.prune_delivered(self._pool, self._settings.delivery_retention_days)
            if pruned:
                _log.info("pruned %d delivered notifications", pruned)
        return bool(fanned or claimed)

    async def _sleep(self) -> None:
        timeout = self._settings.delivery_poll_interval_s
        due = await queue.seconds_until_due(self._pool)
        if due is not None:
            timeout = min(timeout, max(due, 0.01))
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _send(self, http: httpx.AsyncClient, claimed: queue.Claimed) -> str | None:
        """Send one notification; None when the receiver acknowledged it, else why not (an
        HTTP status or an error class: no PHI)."""
        delivery = claimed.delivery
        subscription = claimed.subscription
        try:
            body = await self._body(claimed)
            secret = self._key.open(claimed.secret_sealed, subscription.id.bytes)
            if not self._policy.allow_private:
                await check_endpoint_allowed(subscription.endpoint, self._policy)
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/fhir+json",
                SIGNATURE_HEADER: signature(secret, stamp, body),
            }
            for header in subscription.headers:
                name, value = check_header(header)
                headers[name] = value
            answer = await http.post(
                subscription.endpoint,
                content=body,
                headers=headers,
                timeout=float(subscription.timeout_s or self._settings.delivery_timeout_s),
            )
        except httpx.TimeoutException:
            return "timeout"
        except Invalid:
            return "endpoint refused"
        except httpx.HTTPError as error:
            return type(error).__name__
        except Exception as error:  # noqa: BLE001 - one bad notification must not stop the rest
            _log.error("building delivery %d failed (%s)", delivery.id, type(error).__name__)
            return type(error).__name__
        return None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"

    async def _record(self, claimed: queue.Claimed, problem: str) -> None:
        delivery = claimed.delivery
        retry_in = backoff_s(
            delivery.attempts,
            self._settings.delivery_backoff_base_s,
            self._settings.delivery_backoff_max_s,
        )
        dead = await queue.failed(
            self._pool, delivery, problem, retry_in, self._settings.delivery_max_attempts
        )
        DELIVERY_ATTEMPTS.labels("dead" if dead else "retry").inc()
        if dead:
            _log.warning(
                "delivery %d to subscription %s is dead after %d tries (%s)",
                delivery.id,
                claimed.subscription.id,
                delivery.attempts,
                problem,
            )

    async def _body(self, claimed: queue.Claimed) -> bytes:
        delivery = claimed.delivery
        subscription = claimed.subscription
        event = None
        focus: Json | None = None
        if delivery.kind is NotificationKind.EVENT:
            assert delivery.event_number is not None and delivery.focus_id is not None
            assert delivery.occurred_at is not None
            event = NotificationEvent(
                delivery.event_number,
                delivery.occurred_at,
                delivery.focus_id,
                created=(delivery.event_type or "").endswith("Created"),
            )
            # Events since the start, as of this event: the same on every retry.
            subscription = replace(subscription, events_since_start=delivery.event_number)
            if subscription.content is PayloadContent.FULL_RESOURCE:
                focus = await self._focus(claimed)
        bundle = notification_bundle(
            self._base_url,
            subscription,
            delivery.kind,
            notification_id=delivery.notification_id,
            timestamp=datetime.now(UTC),
            event=event,
            focus=focus,
        )
        return json.dumps(bundle, separators=(",", ":"), ensure_ascii=False).encode()

    async def _focus(self, claimed: queue.Claimed) -> Json | None:
        """The focus as the subscription's organization may see it now (through the policy)."""
        subscription = claimed.subscription
        referral_id = claimed.delivery.focus_id
        assert referral_id is not None
        view = await notification_referral(
            PostgresUnitOfWork(self._pool), subscription, referral_id
        )
        if view is None:
            return None
        resource_type = TOPICS[subscription.topic].resource_type
        outputs: tuple[Any, ...] = ()
        if resource_type == "Task":
            found = await procedures.outputs_of(
                PostgresUnitOfWork(self._pool), subscriber(subscription), [referral_id]
            )
            outputs = found.get(referral_id, ())
        return referral_resource(resource_type, view, outputs)

    async def _listen(self) -> None:
        """Wake the worker on every NOTIFY of either channel; reconnect when the connection
        drops (the poll interval covers what was missed meanwhile)."""
        delay = 1.0
        while True:
            connection = None
            try:
                connection = await self._connect()
                lost = asyncio.Event()
                for channel in (OUTBOX_CHANNEL, DELIVERY_CHANNEL):
                    await connection.add_listener(channel, self._notified)
                connection.add_termination_listener(_setter(lost))
                delay = 1.0
                self._wake.set()  # anything committed while not listening
                await lost.wait()
            except (*_CONNECTION_ERRORS, Unavailable) as error:
                _log.warning("delivery listener lost its connection (%s)", type(error).__name__)
            finally:
                if connection is not None and not connection.is_closed():
                    with suppress(*_CONNECTION_ERRORS):
                        await connection.close(timeout=5)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_S)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._wake.set()


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _connection: event.set()
