"""`referralEvents` over graphql-transport-ws, through the whole app: a change that commits
reaches the subscribers of the referral's two organizations, re-checked as they receive it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from graphql_support import token_for
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from network import Network
from starlette.applications import Starlette

from api.db import outbox
from api.domain.organizations import Organization
from api.domain.referrals import Transition
from api.events.fanout import OutboxFanOut
from api.events.runtime import LISTENER_APPLICATION_NAME
from api.services import consents, referrals

REFERRAL_EVENTS = """
subscription Events($filter: ReferralEventFilterInput, $after: String) {
  referralEvents(filter: $filter, after: $after) {
    type eventId cursor referralId status version occurredAt
    referral { id status reasonText patient { familyName } }
  }
}"""


@asynccontextmanager
async def _client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    # Not a fixture: the transport's task group must close in the task that opened it.
    transport = ASGIWebSocketTransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@asynccontextmanager
async def _socket(app: Starlette) -> AsyncIterator[AsyncWebSocketSession]:
    async with (
        _client(app) as client,
        aconnect_ws(
            "http://testserver/graphql", client, subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):
        yield ws


async def _wait_for_subscribers(app: Starlette, organization: Organization, count: int) -> None:
    fanout: OutboxFanOut = app.state.events
    for _ in range(200):
        if fanout.subscribers_of(organization.id) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{organization.name} never had {count} subscriptions")


@asynccontextmanager
async def _subscribed(
    app: Starlette,
    pool: asyncpg.Pool,
    organization: Organization,
    variables: dict[str, Any] | None = None,
    *,
    stays: bool = True,
) -> AsyncIterator[AsyncWebSocketSession]:
    async with _client(app) as client:
        token = await token_for(client, pool, organization)
    async with _socket(app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": REFERRAL_EVENTS, "variables": variables or {}},
            }
        )
        if stays:
            await _wait_for_subscribers(app, organization, 1)
        yield ws


async def _next(ws: AsyncWebSocketSession) -> dict[str, Any]:
    message = await ws.receive_json(timeout=5)
    assert message["type"] == "next", message
    payload: dict[str, Any] = message["payload"]
    return payload


async def _send_referral(network: Network) -> referrals.ReferralView:
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


async def test_the_performer_receives_accept_and_start_of_its_referral_and_a_stranger_nothing(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    referral_id = str(sent.referral.id)
    async with (
        _subscribed(app, pool, network.peer) as peer,
        _subscribed(app, pool, network.stranger) as stranger,
    ):
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
        )
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.START
        )

        accepted = (await _next(peer))["data"]["referralEvents"]
        started = (await _next(peer))["data"]["referralEvents"]
        with pytest.raises(TimeoutError):
            await stranger.receive_json(timeout=0.5)

    await _wait_for_subscribers(app, network.peer, 0)  # leaving unsubscribed
    assert (accepted["type"], accepted["status"], accepted["version"]) == (
        "ReferralAccepted",
        "ACCEPTED",
        2,
    )
    assert (started["type"], started["status"], started["version"]) == (
        "ReferralStarted",
        "IN_PROGRESS",
        3,
    )
    assert accepted["referralId"] == started["referralId"] == referral_id
    assert accepted["eventId"] != started["eventId"]
    assert started["referral"] == {
        "id": referral_id,
        "status": "IN_PROGRESS",
        "reasonText": "isolation after discharge",
        "patient": {"familyName": "Testperson"},
    }


async def test_the_filter_keeps_only_the_statuses_asked_for(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    only_started = {"filter": {"status": ["IN_PROGRESS"], "direction": ["CLINIC_TO_PEER"]}}
    async with _subscribed(app, pool, network.clinic, only_started) as clinic:
        for move in (Transition.ACCEPT, Transition.START):
            await referrals.transition_referral(
                network.uow(), network.as_peer, sent.referral.id, move
            )
        event = (await _next(clinic))["data"]["referralEvents"]
        with pytest.raises(TimeoutError):
            await clinic.receive_json(timeout=0.5)

    assert (event["type"], event["status"]) == ("ReferralStarted", "IN_PROGRESS")


async def test_after_revocation_the_event_brings_the_redacted_stub(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    await referrals.transition_referral(
        network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
    )
    async with _subscribed(app, pool, network.peer) as peer:
        await consents.revoke_consent(network.uow(), network.as_clinic, network.consent.id)
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.START
        )
        payload = await _next(peer)

    event = payload["data"]["referralEvents"]
    assert (event["type"], event["status"]) == ("ReferralStarted", "IN_PROGRESS")
    assert event["referral"]["id"] == str(sent.referral.id)
    assert event["referral"]["status"] == "IN_PROGRESS"
    assert event["referral"]["reasonText"] is None
    assert event["referral"]["patient"] is None
    codes = {(".".join(map(str, e["path"])), e["extensions"]["code"]) for e in payload["errors"]}
    assert codes == {
        ("referralEvents.referral.reasonText", "CONSENT_REVOKED"),
        ("referralEvents.referral.patient", "CONSENT_REVOKED"),
    }
    assert "isolation" not in str(payload)


async def _listener_backends(pool: asyncpg.Pool, *, listening: bool = False) -> list[int]:
    async with pool.acquire() as connection:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 "
            "AND datname = current_database() AND ($2 = false OR query LIKE 'LISTEN%')",
            LISTENER_APPLICATION_NAME,
            listening,
        )
    return [row["pid"] for row in rows]


async def test_a_lost_listener_ends_its_subscriptions_and_comes_back_for_new_ones(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    async with _subscribed(app, pool, network.peer) as peer:
        [listener] = await _listener_backends(pool)
        async with pool.acquire() as connection:
            await connection.execute("SELECT pg_terminate_backend($1)", listener)
        dropped = await _next(peer)
        completed = await peer.receive_json(timeout=5)

    for _ in range(500):  # the fan-out reconnects after a second
        if await _listener_backends(pool, listening=True):
            break
        await asyncio.sleep(0.01)
    async with _subscribed(app, pool, network.peer) as peer:
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
        )
        accepted = (await _next(peer))["data"]["referralEvents"]

    assert dropped["data"] is None
    assert [e["extensions"]["code"] for e in dropped["errors"]] == ["EVENTS_DROPPED"]
    assert completed["type"] == "complete"
    assert accepted["type"] == "ReferralAccepted"


@pytest.mark.parametrize(
    "init",
    [None, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}],
    ids=["no token", "bad token", "not bearer"],
)
async def test_an_unauthenticated_connection_init_is_refused(
    app: Starlette, init: dict[str, Any] | None
) -> None:
    async with _socket(app) as ws:
        await ws.send_json({"type": "connection_init", "payload": init or {}})
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=5)

    assert closed.value.code == 4403


async def test_a_subscription_without_connection_init_is_refused(
    app: Starlette,
) -> None:
    async with _socket(app) as ws:
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": REFERRAL_EVENTS}})
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=5)

    assert closed.value.code == 4401


async def test_a_query_over_the_socket_is_refused_and_a_subscription_over_post_too(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    async with _client(app) as client:
        token = await token_for(client, pool, network.peer)
        posted = await client.post(
            "/graphql",
            json={"query": "subscription { referralEvents { type } }"},
            headers={"authorization": f"Bearer {token}"},
        )
    async with _socket(app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {"id": "q", "type": "subscribe", "payload": {"query": "{ viewer { clientId } }"}}
        )
        answer = await ws.receive_json(timeout=5)

    assert answer["type"] == "error", answer
    assert [e["extensions"]["code"] for e in answer["payload"]] == ["INVALID_INPUT"]
    assert posted.json()["data"] is None
    assert [e["extensions"]["code"] for e in posted.json()["errors"]] == ["INVALID_INPUT"]


async def test_an_event_that_carries_patient_data_is_in_the_audit_trail_of_its_receiver(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    async with _subscribed(app, pool, network.peer) as peer:
        before = await pool.fetchval("SELECT clock_timestamp()")
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
        )
        event = (await _next(peer))["data"]["referralEvents"]
    assert event["referral"]["patient"]["familyName"]  # patient data went out with the event
    # The transition itself is an update ('U'); the reads are the event's delivery.
    rows = await pool.fetch(
        "SELECT operation, outcome, resource_type, resource_id, patient_id, consent_ids, purpose "
        "FROM audit_events WHERE organization_id = $1 AND recorded_at > $2 AND action = 'R' "
        "ORDER BY resource_type",
        network.peer.id,
        before,
    )
    assert [(r["operation"], r["resource_type"], r["resource_id"]) for r in rows] == [
        ("readPatient", "Patient", network.patient.id),
        ("readReferral", "Referral", sent.referral.id),
    ]
    for row in rows:
        assert (row["outcome"], row["patient_id"]) == ("success", network.patient.id)
        assert row["consent_ids"] and row["purpose"] == "CAREMGT", dict(row)


async def test_a_subscriber_resuming_after_its_last_cursor_gets_what_it_missed_in_order_then_live(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    async with _subscribed(app, pool, network.peer) as peer:
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
        )
        seen = (await _next(peer))["data"]["referralEvents"]
    await _wait_for_subscribers(app, network.peer, 0)
    # Away: three changes, one of them to another referral of the same organization.
    other = await _send_referral(network)
    for move in (Transition.START, Transition.HOLD):
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, move, reason="waiting list"
        )

    async with _subscribed(app, pool, network.peer, {"after": seen["cursor"]}) as peer:
        missed = [(await _next(peer))["data"]["referralEvents"] for _ in range(3)]
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.RESUME
        )
        live = (await _next(peer))["data"]["referralEvents"]
        with pytest.raises(TimeoutError):
            await peer.receive_json(timeout=0.5)

    assert [(e["type"], e["referralId"]) for e in [*missed, live]] == [
        ("ReferralCreated", str(other.referral.id)),
        ("ReferralStarted", str(sent.referral.id)),
        ("ReferralPutOnHold", str(sent.referral.id)),
        ("ReferralResumed", str(sent.referral.id)),
    ]
    cursors = [seen["cursor"], *(e["cursor"] for e in [*missed, live])]
    assert len(set(cursors)) == 5


async def test_a_cursor_the_server_no_longer_holds_fails_with_events_expired(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    sent = await _send_referral(network)
    async with _subscribed(app, pool, network.peer) as peer:
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.ACCEPT
        )
        seen = (await _next(peer))["data"]["referralEvents"]
    await pool.execute("UPDATE outbox SET published_at = now() - interval '30 days'")
    await pool.execute("UPDATE outbox SET created_at = now() - interval '30 days'")
    async with pool.acquire() as connection:
        await outbox.prune(connection, 7)

    after = {"after": seen["cursor"]}
    async with _subscribed(app, pool, network.peer, after, stays=False) as peer:
        expired = await peer.receive_json(timeout=5)
        completed = await peer.receive_json(timeout=5)

    assert expired["type"] == "next", expired
    assert expired["payload"]["data"] is None
    assert [e["extensions"]["code"] for e in expired["payload"]["errors"]] == ["EVENTS_EXPIRED"]
    assert completed["type"] == "complete"


async def test_a_cursor_this_server_did_not_issue_is_refused_naming_the_argument(
    app: Starlette, pool: asyncpg.Pool, network: Network
) -> None:
    async with _client(app) as client:
        token = await token_for(client, pool, network.peer)
    async with _socket(app) as ws:
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": REFERRAL_EVENTS, "variables": {"after": "bm90LWEtY3Vyc29y"}},
            }
        )
        refused = await ws.receive_json(timeout=5)

    assert refused["type"] in {"next", "error"}, refused
    errors = refused["payload"]["errors"] if refused["type"] == "next" else refused["payload"]
    assert [e["extensions"]["code"] for e in errors] == ["INVALID_INPUT"]
    assert "after" in errors[0]["message"]
