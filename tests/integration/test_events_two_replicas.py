"""Two `serve` processes on one database: a GraphQL subscriber on one sees the events written
through the other, and one that goes away for a while resumes from its last cursor, on either
replica, with every event it missed, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from graphql_support import token_for
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from network import Network
from serve_support import free_port, wait_ready

from api.domain.referrals import Transition
from api.services import referrals

# Issue 11: a subscriber that disconnects for 30 s and resumes with its last cursor.
AWAY_S = 30.0

EVENTS = """
subscription Events($after: String) {
  referralEvents(after: $after) { type cursor referralId version }
}"""
MOVE = """
mutation Move($input: ReferralTransitionInput!) {
  %s(input: $input) { id status }
}"""


@asynccontextmanager
async def _serve(database_url: str, data_dir: Path) -> AsyncIterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PEERBRIDGE_DATA_DIR": str(data_dir),
        # Replicas behind one address: a token either one issues is good at both.
        "PEERBRIDGE_PUBLIC_BASE_URL": "http://peerbridge.test",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_ready(port, process, time.monotonic() + 90)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


@asynccontextmanager
async def _subscribed(
    base_url: str, token: str, after: str | None = None
) -> AsyncIterator[AsyncWebSocketSession]:
    async with (
        httpx.AsyncClient(base_url=base_url) as client,
        aconnect_ws("/graphql", client, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
        await ws.send_json(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": EVENTS, "variables": {"after": after}},
            }
        )
        yield ws


async def _next(ws: AsyncWebSocketSession) -> dict[str, Any]:
    message = await ws.receive_json(timeout=10)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    event: dict[str, Any] = message["payload"]["data"]["referralEvents"]
    return event


async def _move(base_url: str, token: str, transition: str, referral_id: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        answer = await client.post(
            "/graphql",
            json={
                "query": MOVE % f"{transition}Referral",
                "variables": {"input": {"referralId": referral_id, "reason": "waiting list"}},
            },
            headers={"authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text


async def _settle_subscription(ws: AsyncWebSocketSession) -> None:
    # Nothing announces that the subscription is registered: a quiet moment is enough here,
    # and the resumed subscription below does not depend on it (its replay covers the gap).
    with pytest.raises(TimeoutError):
        await ws.receive_json(timeout=1.0)


async def test_a_subscriber_on_one_replica_sees_writes_through_the_other_and_resumes_on_it(
    database_url: str, pool: asyncpg.Pool, network: Network, tmp_path: Path
) -> None:
    sent = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
        ),
    )
    referral_id = str(sent.referral.id)
    async with (
        _serve(database_url, tmp_path) as first,
        _serve(database_url, tmp_path) as second,
    ):
        async with httpx.AsyncClient(base_url=first) as client:
            token = await token_for(client, pool, network.peer)
        async with _subscribed(first, token) as ws:
            await _settle_subscription(ws)
            await _move(second, token, "accept", referral_id)
            accepted = await _next(ws)

        # Away for AWAY_S while the other replica writes.
        for transition in ("start", "hold", "resume"):
            await _move(second, token, transition, referral_id)
            await asyncio.sleep(AWAY_S / 3)
        await referrals.transition_referral(
            network.uow(), network.as_peer, sent.referral.id, Transition.COMPLETE
        )

        async with _subscribed(second, token, after=accepted["cursor"]) as ws:
            missed = [await _next(ws) for _ in range(4)]

    assert (accepted["type"], accepted["version"]) == ("ReferralAccepted", 2)
    assert [(e["type"], e["version"]) for e in missed] == [
        ("ReferralStarted", 3),
        ("ReferralPutOnHold", 4),
        ("ReferralResumed", 5),
        ("ReferralCompleted", 6),
    ]
    assert {e["referralId"] for e in missed} == {referral_id}
