"""Live updates of the console's referral lists over Server-Sent Events, against the app served
by uvicorn on 127.0.0.1 (a stream needs a real server): an event names only the referral, and
only when the signed-in person may read it at that moment; the stream ends with the session."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
import uvicorn
from network import Network

from api.app import create_app
from api.db.uow import PostgresUnitOfWork
from api.domain.referrals import Transition
from api.domain.staff import StaffRole
from api.services import referrals, users
from api.settings import Settings

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_WAIT_S = 30.0  # an upper bound on waiting for an event, never a measurement


@pytest_asyncio.fixture
async def served(settings: Settings) -> AsyncIterator[str]:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def _signed_in(
    base_url: str, pool: asyncpg.Pool, email: str, **account: Any
) -> httpx.AsyncClient:
    await users.create_user(
        PostgresUnitOfWork(pool), users.CreateStaffUser(email=email, password=PASSWORD, **account)
    )
    client = httpx.AsyncClient(base_url=base_url)
    form = await client.get("/console/login")
    token = _TOKEN.search(form.text)
    assert token is not None
    signed_in = await client.post(
        "/console/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert signed_in.status_code == 303
    return client


class Stream:
    """The events of one open /console/events response, as the browser's EventSource parses
    them (comments and `retry` skipped); every raw line kept."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.raw: list[str] = []
        self._lines = response.aiter_lines()

    async def next(self) -> tuple[str, dict[str, Any]]:
        async def read() -> tuple[str, dict[str, Any]]:
            name, data = "message", ""
            async for line in self._lines:
                self.raw.append(line)
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    data = line.removeprefix("data: ")
                elif line == "" and data:
                    return name, json.loads(data)
            raise AssertionError(f"the stream ended; it said {self.raw}")

        return await asyncio.wait_for(read(), _WAIT_S)


@pytest_asyncio.fixture
async def opened() -> AsyncIterator[list[httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []
    yield clients
    for client in clients:
        await client.aclose()


@asynccontextmanager
async def _listen(client: httpx.AsyncClient) -> AsyncIterator[Stream]:
    async with client.stream("GET", "/console/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        stream = Stream(response)
        assert await stream.next() == ("ready", {})
        yield stream


async def _referral(network: Network) -> referrals.ReferralView:
    return await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
        ),
    )


async def test_the_inbox_hears_each_new_referral_by_id_only(
    served: str, network: Network, pool: asyncpg.Pool, opened: list[httpx.AsyncClient]
) -> None:
    coordinator = await _signed_in(
        served,
        pool,
        "lead@peer.example",
        organization_id=network.peer.id,
        role=StaffRole.COORDINATOR,
    )
    opened.append(coordinator)
    async with _listen(coordinator) as stream:
        created = await _referral(network)
        assert await stream.next() == ("changed", {"referral": str(created.referral.id)})
        await referrals.transition_referral(
            network.uow(), network.as_peer, created.referral.id, Transition.ACCEPT
        )
        assert await stream.next() == ("changed", {"referral": str(created.referral.id)})
        said = "\n".join(stream.raw)
        assert network.patient.given_name not in said and network.patient.family_name not in said
    # Nothing of a referral was disclosed by the stream: nothing audited as the person.
    async with pool.acquire() as conn:
        audited = "SELECT count(*) FROM audit_events WHERE client_id = 'console'"
        assert await conn.fetchval(audited) == 0


async def test_a_supporter_hears_only_their_caseload(
    served: str, network: Network, pool: asyncpg.Pool, opened: list[httpx.AsyncClient]
) -> None:
    supporter = await _signed_in(
        served,
        pool,
        "robin@peer.example",
        organization_id=network.peer.id,
        role=StaffRole.SUPPORTER,
        supporter_id=network.supporter.id,
    )
    opened.append(supporter)
    async with _listen(supporter) as stream:
        not_mine = await _referral(network)  # their organization's, not assigned to them
        mine = await _referral(network)
        await referrals.transition_referral(
            network.uow(), network.as_peer, mine.referral.id, Transition.ACCEPT
        )
        await referrals.assign_supporter(
            network.uow(), network.as_peer, mine.referral.id, network.supporter.id
        )
        # The three events before the assignment named referrals not (yet) in the caseload.
        assert await stream.next() == ("changed", {"referral": str(mine.referral.id)})
        assert str(not_mine.referral.id) not in "\n".join(stream.raw)


async def test_the_clinics_sent_list_hears_the_peer_organizations_answer(
    served: str, network: Network, pool: asyncpg.Pool, opened: list[httpx.AsyncClient]
) -> None:
    created = await _referral(network)
    clinic = await _signed_in(
        served,
        pool,
        "desk@clinic.example",
        organization_id=network.clinic.id,
        role=StaffRole.CLINIC,
    )
    opened.append(clinic)
    async with _listen(clinic) as stream:
        await referrals.transition_referral(
            network.uow(), network.as_peer, created.referral.id, Transition.ACCEPT
        )
        assert await stream.next() == ("changed", {"referral": str(created.referral.id)})


async def test_the_stream_ends_with_the_session(
    served: str, network: Network, pool: asyncpg.Pool, opened: list[httpx.AsyncClient]
) -> None:
    coordinator = await _signed_in(
        served,
        pool,
        "lead@peer.example",
        organization_id=network.peer.id,
        role=StaffRole.COORDINATOR,
    )
    opened.append(coordinator)
    async with _listen(coordinator) as stream:
        await users.disable_user(PostgresUnitOfWork(pool), "lead@peer.example")
        await _referral(network)
        assert await stream.next() == ("signed-out", {})


async def test_the_stream_needs_a_session_and_a_list_role(
    served: str, network: Network, pool: asyncpg.Pool, opened: list[httpx.AsyncClient]
) -> None:
    async with httpx.AsyncClient(base_url=served) as anonymous:
        response = await anonymous.get("/console/events")
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login"
    supervisor = await _signed_in(
        served,
        pool,
        "boss@peer.example",
        organization_id=network.peer.id,
        role=StaffRole.SUPERVISOR,
    )
    opened.append(supervisor)
    assert (await supervisor.get("/console/events")).status_code == 404


async def test_the_inbox_page_loads_the_script_under_its_policy(
    served: str, network: Network, pool: asyncpg.Pool, opened: list[httpx.AsyncClient]
) -> None:
    coordinator = await _signed_in(
        served,
        pool,
        "lead@peer.example",
        organization_id=network.peer.id,
        role=StaffRole.COORDINATOR,
    )
    opened.append(coordinator)
    inbox = await coordinator.get("/console/inbox")
    assert '<script src="/static/console/live-updates.js" defer></script>' in inbox.text
    policy = inbox.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "connect-src 'self';" in policy
    assert "unsafe-inline" not in policy
    script = await coordinator.get("/static/console/live-updates.js")
    assert script.status_code == 200 and "EventSource" in script.text
