"""FHIR Subscriptions delivered by the worker to a real HTTP receiver on loopback: handshake,
heartbeat, event notifications (both validators), consent at build time, retries into
dead-letter and back through the CLI."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from delivery_support import TASK_TOPIC, receiving, subscribe, subscription
from fhir.resources.R4B.bundle import Bundle
from fhir_support import Fhir
from network import Network
from prometheus_client import REGISTRY
from starlette.applications import Starlette

from api.cli.main import main
from api.db import deliveries as queue
from api.db.pool import connect
from api.delivery.worker import DeliveryWorker
from api.domain.referrals import Transition
from api.integrations.fhir.resources.subscriptions import (
    EXT_FILTER_CRITERIA,
    EXT_HEARTBEAT_PERIOD,
    EXT_SIGNING_SECRET,
    EXT_TIMEOUT,
    EXT_TOPIC_CANONICAL,
)
from api.services import consent_revocations, referrals
from api.settings import Settings


def fast(settings: Settings, **overrides: Any) -> Settings:
    """Worker timings for tests: retries within a second, a short fallback poll."""
    values: dict[str, Any] = {
        "delivery_backoff_base_s": 0.05,
        "delivery_backoff_max_s": 0.2,
        "delivery_poll_interval_s": 0.2,
        "delivery_max_attempts": 3,
        "delivery_timeout_s": 1.0,
    }
    return settings.model_copy(update={**values, **overrides})


@asynccontextmanager
async def worker(app: Starlette, settings: Settings) -> AsyncIterator[DeliveryWorker]:
    running = DeliveryWorker(
        app.state.pool,
        settings,
        app.state.auth.kek,
        lambda: connect(settings, application_name="test-delivery"),
    )
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def node_problems(resources: list[dict[str, Any]]) -> list[str]:
    """The contract suite's Node validators (none when Node is not installed)."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "contract"))
    from fhir_validator import expand, node_available, validate

    return validate(expand(resources)) if node_available() else []


async def send_referral(network: Network) -> referrals.ReferralView:
    return await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
            reason_text="isolation after discharge",
        ),
    )


async def test_handshake_heartbeat_and_events_reach_the_receiver_signed_and_valid(
    app: Starlette,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    network: Network,
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    async with receiving() as receiver:
        created, secret = await subscribe(
            peer,
            subscription(
                receiver.url,
                content="full-resource",
                filters=f"Task?owner=Organization/{network.peer.id}&status=requested,accepted",
                heartbeat_s=1,
                timeout_s=5,
            ),
        )
        assert created["status"] == "requested"
        assert created["reason"] == "Referrals for our peer program"
        async with worker(app, fast(settings)):
            (handshake,) = await receiver.wait_for("handshake")
            assert handshake.status["status"]["valueCode"] == "requested"
            read = await _active(peer, created["id"])
            assert EXT_SIGNING_SECRET not in str(read)  # shown once, at create

            sent = await send_referral(network)
            # A full-resource payload is the resource when the notification is built.
            await receiver.wait_for("event-notification")
            await referrals.transition_referral(
                network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
            )
            events = await receiver.wait_for("event-notification", 2)
            await receiver.wait_for("heartbeat")

    assert all(r.signed_with(secret) for r in receiver.received)
    assert not any(r.signed_with("another secret") for r in receiver.received)
    assert all(r.headers["authorization"] == "Bearer receiver-token" for r in receiver.received)
    assert [e.event_number for e in events] == [1, 2]
    task_url = f"{settings.base_url}/fhir/Task/{sent.referral.id}"
    assert [e.focus for e in events] == [task_url, task_url]
    tasks = [e.bundle["entry"][1]["resource"] for e in events]
    assert [t["status"] for t in tasks] == ["requested", "accepted"]
    assert events[1].bundle["entry"][1]["request"] == {
        "method": "PUT",
        "url": f"Task/{sent.referral.id}",
    }
    assert len({r.bundle["id"] for r in receiver.received}) == len(receiver.received)
    bundles = [r.bundle for r in receiver.received]
    for bundle in bundles:
        Bundle.model_validate(bundle)
        assert bundle["type"] == "history"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Parameters"
    assert node_problems(bundles) == []


async def test_a_revoked_consent_leaves_the_redacted_stub_a_read_gives_in_the_payload(
    app: Starlette,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    network: Network,
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    sent = await send_referral(network)
    async with receiving() as receiver:
        await subscribe(peer, subscription(receiver.url, content="full-resource"))
        async with worker(app, fast(settings)):
            await receiver.wait_for("handshake")
            await consent_revocations.revoke_consent(
                network.uow(), network.as_clinic, network.consent.id, reason="moved away"
            )
            await referrals.transition_referral(
                network.uow(),
                network.as_peer,
                sent.referral.id,
                Transition.REJECT,
                reason="no consent",
            )
            (event,) = await receiver.wait_for("event-notification")
    delivered = event.bundle["entry"][1]["resource"]
    read = (await peer.get(f"Task/{sent.referral.id}")).json()
    assert delivered == read
    assert "Ada" not in event.raw.decode() and "isolation" not in event.raw.decode()


async def test_only_the_subscribing_organization_sees_its_subscription(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    created, _ = await subscribe(peer, subscription("http://127.0.0.1:9/hook"))
    assert (await stranger.get(f"Subscription/{created['id']}")).status_code == 404
    assert (await stranger.request("DELETE", f"Subscription/{created['id']}")).status_code == 404
    listed = (await peer.get("Subscription")).json()
    assert [e["resource"]["id"] for e in listed["entry"]] == [created["id"]]
    assert "entry" not in (await stranger.get("Subscription")).json()
    status = (await peer.get(f"Subscription/{created['id']}/$status")).json()
    parameters = status["entry"][0]["resource"]["parameter"]
    assert {"name": "type", "valueCode": "query-status"} in parameters
    assert (await peer.request("DELETE", f"Subscription/{created['id']}")).status_code == 200
    assert (await peer.get(f"Subscription/{created['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "element"),
    [
        ({"criteria": "http://example.org/SubscriptionTopic/Nope"}, "Subscription.criteria"),
        ({"channel": {"type": "websocket"}}, "Subscription.channel.type"),
        (
            {"channel": {"type": "rest-hook", "endpoint": "ftp://x.example/hook"}},
            "Subscription.channel.endpoint",
        ),
        (
            {"channel": {"type": "rest-hook", "endpoint": "http://x/", "header": ["no colon"]}},
            "Subscription.channel.header",
        ),
        (
            {"_criteria": {"extension": [{"url": EXT_FILTER_CRITERIA, "valueString": "Task?x=1"}]}},
            "filterCriteria",
        ),
        (
            {
                "channel": {
                    "type": "rest-hook",
                    "endpoint": "http://x.test/",
                    "extension": [{"url": EXT_HEARTBEAT_PERIOD, "valueUnsignedInt": 99999999}],
                }
            },
            "heartbeatPeriod",
        ),
        (
            {
                "channel": {
                    "type": "rest-hook",
                    "endpoint": "http://x.test/",
                    "extension": [{"url": EXT_TIMEOUT, "valueString": "5"}],
                }
            },
            "Subscription.channel",
        ),
    ],
)
async def test_a_subscription_the_server_cannot_honour_is_refused_naming_the_element(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    change: dict[str, Any],
    element: str,
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    response = await peer.request(
        "POST", "Subscription", {**subscription("http://127.0.0.1:9/hook"), **change}
    )
    assert response.status_code in (400, 422), response.text
    issue = response.json()["issue"][0]
    assert any(element in e for e in issue.get("expression", [])), issue


async def test_private_endpoints_are_refused_when_not_allowed(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"subscription_allow_private_endpoints": False}
    )
    peer = await Fhir.as_organization(client, pool, network.peer)
    for endpoint in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/", "http://[::1]/"):
        response = await peer.request("POST", "Subscription", subscription(endpoint))
        assert response.status_code in (400, 422), endpoint
        assert "private" in response.text


async def test_creating_needs_the_subscription_scope(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    reader = await Fhir.as_organization(client, pool, network.peer, "system/*.rs")
    response = await reader.request("POST", "Subscription", subscription("http://x.test/"))
    assert response.status_code == 403


async def test_metadata_advertises_both_topics(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    (entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    topics = {e["valueCanonical"] for e in entry["extension"] if e["url"] == EXT_TOPIC_CANONICAL}
    assert TASK_TOPIC in topics and len(topics) == 2


async def _cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> int:
    monkeypatch.setenv("DATABASE_URL", str(settings.database_url))
    return await asyncio.to_thread(main, list(argv))


async def test_a_failing_receiver_is_retried_then_dead_and_the_cli_replays_it(
    app: Starlette,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead_before = _attempts("dead")
    peer = await Fhir.as_organization(client, pool, network.peer)
    async with receiving() as receiver:
        await subscribe(peer, subscription(receiver.url))
        async with worker(app, fast(settings)):
            await receiver.wait_for("handshake")
            receiver.status = 500
            await send_referral(network)
            await receiver.wait_for("event-notification", 3)
            await _wait_until_dead(pool, 1)
            assert len(receiver.of_kind("event-notification")) == 3  # max attempts, no more
            assert _attempts("dead") == dead_before + 1
            assert await _cli(monkeypatch, settings, "deliveries", "list", "--dead") == 0
            listed = capsys.readouterr().out
            assert "event-notification" in listed and "HTTP 500" in listed

            receiver.status = 200
            assert await _cli(monkeypatch, settings, "deliveries", "retry", "--all-dead") == 0
            assert "queued 1" in capsys.readouterr().out
            replayed = await receiver.wait_for("event-notification", 4)
    assert len({r.bundle["id"] for r in replayed}) == 1  # the same notification id each time
    async with pool.acquire() as db:
        assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'dead'") == 0


async def test_a_receiver_that_times_out_is_retried_and_lands_in_dead_letter(
    app: Starlette,
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    settings: Settings,
    network: Network,
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    async with receiving() as receiver:
        receiver.delay_s = 1.5
        await subscribe(peer, subscription(receiver.url, timeout_s=1))
        async with worker(app, fast(settings, delivery_max_attempts=2)):
            await _wait_until_dead(pool, 1)
    async with pool.acquire() as db:
        row = await db.fetchrow("SELECT kind, attempts, last_error FROM deliveries")
        status = await db.fetchval("SELECT status FROM subscriptions")
    assert dict(row) == {"kind": "handshake", "attempts": 2, "last_error": "timeout"}
    assert status == "error"  # a handshake that never got through


async def _active(fhir: Fhir, subscription_id: str) -> dict[str, Any]:
    """The subscription once its handshake's answer is recorded (just after the receiver saw it)."""
    for _ in range(500):
        read: dict[str, Any] = (await fhir.get(f"Subscription/{subscription_id}")).json()
        if read["status"] == "active":
            return read
        await asyncio.sleep(0.02)
    raise AssertionError("the subscription never became active")


def _attempts(outcome: str) -> float:
    """This process's `peerbridge_delivery_attempts_total` for one outcome."""
    value = REGISTRY.get_sample_value("peerbridge_delivery_attempts_total", {"outcome": outcome})
    return value or 0.0


async def _wait_until_dead(pool: asyncpg.Pool, count: int) -> None:
    for _ in range(1000):
        async with pool.acquire() as db:
            if await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'dead'") >= count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError("no dead delivery")


async def test_delivered_rows_are_pruned_after_the_retention_and_the_rest_kept(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    peer = await Fhir.as_organization(client, pool, network.peer)
    created, _ = await subscribe(peer, subscription("http://127.0.0.1:9/hook"))
    async with pool.acquire() as db:
        await db.execute(
            "INSERT INTO deliveries (subscription_id, kind, ordering_key, status, delivered_at) "
            "SELECT $1::uuid, 'heartbeat', $1::uuid, 'delivered', now() - make_interval(days => d) "
            "FROM unnest(ARRAY[1, 8, 30]) AS d",
            created["id"],
        )
        await db.execute(
            "UPDATE deliveries SET status = 'dead' WHERE kind = 'handshake' "
            "AND subscription_id = $1",
            uuid.UUID(created["id"]),
        )
    assert await queue.prune_delivered(pool, 7) == 2
    async with pool.acquire() as db:
        left = await db.fetch("SELECT kind, status FROM deliveries ORDER BY id")
    assert [tuple(r) for r in left] == [("handshake", "dead"), ("heartbeat", "delivered")]
