"""PeerBridge as a federation v2.9 subgraph, checked by real tools: both composers accept its
SDL (alone and next to a clinic subgraph that owns Patient demographics), and Apollo Gateway
serves queries across both subgraphs, batching `_entities`, with consent and tenancy intact."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from graphql_support import GraphQL, error_codes, token_for
from network import Network, register_patient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.app import create_app
from api.schema.schema import print_sdl
from api.settings import Settings

ROOT = Path(__file__).parents[2]
JS = Path(__file__).parent / "js"

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(
        shutil.which("node") is None
        or not (ROOT / "node_modules" / "@apollo" / "gateway").exists(),
        reason="needs Node and the locked npm packages",
    ),
]

ACROSS = """
query Across {
  clinicPatients {
    id mrn displayName
    givenName
    referrals { edges { node { status priority performer { name } program { name } } } }
    consents { status dataClasses recipient { name } }
  }
}"""


def _compose(sdl: str, *, with_clinic: bool) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(JS / "compose.mjs")],
        input=json.dumps(
            {
                "subgraphs": [
                    {"name": "peerbridge", "url": "http://127.0.0.1/graphql", "sdl": sdl}
                ],
                "withClinic": with_clinic,
            }
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("with_clinic", [False, True], ids=["alone", "with-clinic"])
def test_apollo_and_the_guild_both_compose_the_subgraph(with_clinic: bool) -> None:
    result = _compose(print_sdl(), with_clinic=with_clinic)

    for composer in ("apollo", "guild"):
        assert result[composer]["errors"] == [], composer
        supergraph = result[composer]["supergraphSdl"]
        assert "type Referral" in supergraph and "join__" in supergraph
        if with_clinic:
            assert "displayName: String!" in supergraph and "consents: [Consent!]" in supergraph


class _RecordGraphQLBodies:
    """Keeps the JSON bodies the gateway posts to PeerBridge, to see its `_entities` batches."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bodies: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/graphql":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Message:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                try:
                    self.bodies.append(json.loads(b"".join(chunks) or b"{}"))
                except ValueError:
                    pass
            return message

        await self.app(scope, recording, send)


@dataclass
class _Stack:
    peerbridge: str
    gateway: str
    recorder: _RecordGraphQLBodies


@pytest.fixture
async def stack(settings: Settings, network: Network) -> AsyncIterator[_Stack]:
    """PeerBridge under uvicorn on loopback, then Apollo Gateway (Node) in front of it."""
    recorder = _RecordGraphQLBodies(create_app(settings))
    server = uvicorn.Server(
        uvicorn.Config(recorder, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    peerbridge = f"http://127.0.0.1:{port}"
    ben = await register_patient(network, mrn="MRN-BEN")
    patients = [
        {"id": str(network.patient.id), "mrn": "MRN-ADA", "displayName": "Ada T."},
        {"id": str(ben.id), "mrn": "MRN-BEN", "displayName": "Ben S."},
    ]
    node = await asyncio.create_subprocess_exec(
        "node",
        str(JS / "gateway.mjs"),
        json.dumps({"peerbridgeUrl": f"{peerbridge}/graphql", "patients": patients}),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert node.stdout is not None
        yield _Stack(peerbridge, await _gateway_url(node.stdout), recorder)
    finally:
        assert node.stdin is not None
        node.stdin.close()
        try:
            await asyncio.wait_for(node.wait(), timeout=10)
        except TimeoutError:
            node.kill()
        server.should_exit = True
        await serving


async def _gateway_url(stdout: asyncio.StreamReader) -> str:
    async with asyncio.timeout(60):
        while line := (await stdout.readline()).decode():
            if line.startswith("READY "):
                return str(json.loads(line.removeprefix("READY "))["gateway"])
    raise AssertionError("the gateway did not start")


async def _through_gateway(stack: _Stack, token: str, query: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(
            stack.gateway,
            json={"query": query},
            headers={"authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _token(stack: _Stack, pool: asyncpg.Pool, organization: Any) -> str:
    async with httpx.AsyncClient(base_url=stack.peerbridge) as http:
        return await token_for(http, pool, organization)


async def _refer_ada(stack: _Stack, pool: asyncpg.Pool, network: Network) -> None:
    async with httpx.AsyncClient(base_url=stack.peerbridge) as http:
        clinic = await GraphQL.as_organization(http, pool, network.clinic)
        await clinic.data(
            """mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }""",
            input={
                "patientId": str(network.patient.id),
                "performerOrganizationId": str(network.peer.id),
                "programId": str(network.program.id),
                "priority": "URGENT",
            },
        )


async def test_a_query_crosses_the_clinic_and_peerbridge_with_one_entities_batch(
    stack: _Stack, pool: asyncpg.Pool, network: Network
) -> None:
    await _refer_ada(stack, pool, network)
    token = await _token(stack, pool, network.clinic)
    stack.recorder.bodies.clear()

    body = await _through_gateway(stack, token, ACROSS)

    assert "errors" not in body, body
    ada, ben = body["data"]["clinicPatients"]
    assert (ada["mrn"], ada["displayName"], ada["givenName"]) == ("MRN-ADA", "Ada T.", "Ada")
    assert ada["referrals"]["edges"] == [
        {
            "node": {
                "status": "REQUESTED",
                "priority": "URGENT",
                "performer": {"name": network.peer.name},
                "program": {"name": "Recovery Circle"},
            }
        }
    ]
    assert ada["consents"] == [
        {
            "status": "ACTIVE",
            "dataClasses": ["DEMOGRAPHICS", "OUTCOMES", "REFERRAL", "SESSIONS"],
            "recipient": {"name": network.peer.name},
        }
    ]
    assert (ben["givenName"], ben["referrals"]["edges"]) == ("Ben", [])
    entity_calls = [b for b in stack.recorder.bodies if "_entities" in b.get("query", "")]
    assert len(entity_calls) == 1
    representations = entity_calls[0]["variables"]["representations"]
    assert sorted(r["id"] for r in representations) == sorted(p["id"] for p in (ada, ben))


async def test_consent_and_tenancy_hold_through_the_gateway(
    stack: _Stack, pool: asyncpg.Pool, network: Network
) -> None:
    await _refer_ada(stack, pool, network)
    peer = await _through_gateway(stack, await _token(stack, pool, network.peer), ACROSS)
    stranger = await _through_gateway(stack, await _token(stack, pool, network.stranger), ACROSS)
    anonymous_body: dict[str, Any]
    async with httpx.AsyncClient(timeout=30) as http:
        anonymous_body = (await http.post(stack.gateway, json={"query": ACROSS})).json()

    # The peer organization: Ada consented to it, Ben did not. The clinic's own fields arrive
    # for both; PeerBridge's fields of Ben are null with an error at their path: NOT_FOUND, as
    # the peer has no relationship with Ben (PeerBridge is no oracle of who is a patient).
    ada, ben = peer["data"]["clinicPatients"]
    assert ada["givenName"] == "Ada"
    assert ada["referrals"]["edges"][0]["node"]["status"] == "REQUESTED"
    assert (ben["displayName"], ben["givenName"], ben["consents"]) == ("Ben S.", None, None)
    assert ben["referrals"] == {"edges": []}  # no referral of Ben involves this organization
    assert sorted(error_codes(peer)) == [
        ("clinicPatients.1.consents", "NOT_FOUND"),
        ("clinicPatients.1.givenName", "NOT_FOUND"),
    ]
    # A peer organization nobody consented to sees no PeerBridge data of either patient.
    assert [p["givenName"] for p in stranger["data"]["clinicPatients"]] == [None, None]
    assert [p["referrals"] for p in stranger["data"]["clinicPatients"]] == [{"edges": []}] * 2
    assert {code for _, code in error_codes(stranger)} == {"NOT_FOUND"}
    # Without a token PeerBridge refuses (the gateway reports the subgraph's error).
    assert "UNAUTHENTICATED" in json.dumps(anonymous_body)
    for body in (stranger, anonymous_body):
        assert '"Ada"' not in json.dumps(body)  # PeerBridge's givenName; "Ada T." is the clinic's
