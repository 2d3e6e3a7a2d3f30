"""The clinic flow and the peer flow with FHIR alone.

The clinic is a fhirpy client over real HTTP (uvicorn serving the app on a free port): it posts
Patient + Consents + ServiceRequest + Task in one transaction, polls `Task?_lastUpdated=gt..`,
sees acceptance and completion, and reads the Procedure and the outcome Observations. The peer
organization does its side over FHIR too (tests/fhir_flows.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
import uvicorn
from fhir_flows import peer_side, referral_transaction
from fhir_support import Fhir, entries
from fhirpy import AsyncFHIRClient
from graphql_support import token_for
from network import Network
from starlette.applications import Starlette


@pytest.fixture
async def base_url(app: Starlette) -> AsyncIterator[str]:
    """The app (lifespan already running) served over HTTP on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        await task


async def test_clinic_and_peer_organization_complete_a_referral_with_fhir_alone(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, base_url: str, app: Starlette
) -> None:
    token = await token_for(client, pool, network.clinic)
    public = f"{app.state.settings.base_url}/fhir"
    ehr = AsyncFHIRClient(base_url, authorization=f"Bearer {token}", url_aliases=[public])
    started = datetime.now(UTC).isoformat()

    posted = await ehr.execute("", method="post", data=referral_transaction(network))
    statuses = [e["response"]["status"] for e in posted["entry"]]
    assert statuses == ["201 Created"] * 5
    task_id = posted["entry"][4]["resource"]["id"]

    peer = await Fhir.as_organization(client, pool, network.peer)
    assert await peer_side(peer, network, started) == task_id

    changed = (
        await ehr.resources("Task")
        .search(owner=f"Organization/{network.peer.id}", _lastUpdated=f"gt{started}")
        .fetch_all()
    )
    assert [(t["id"], t["status"]) for t in changed] == [(task_id, "completed")]
    task = changed[0]
    assert task["businessStatus"]["coding"][0]["code"] == "7.0"
    procedure = await ehr.reference(
        reference=task["output"][0]["valueReference"]["reference"]
    ).to_resource()
    assert procedure["code"]["coding"][0]["code"] == "H0038"
    assert procedure["extension"][0]["extension"][0]["valueUnsignedInt"] == 4  # 60 min = 4 units
    patient_ref = task["for"]["reference"]
    observations = await ehr.resources("Observation").search(patient=patient_ref).fetch_all()
    assert [o["code"]["coding"][0]["code"] for o in observations] == ["44261-6"]
    assert observations[0]["valueInteger"] == 7
    patient = await ehr.reference(reference=patient_ref).to_resource()
    assert patient["name"][0]["family"] == "Okafor"
    consents = await ehr.resources("Consent").search(patient=patient_ref).fetch_all()
    assert {c["status"] for c in consents} == {"active"}
    assert len(consents) == 2


async def test_a_revoked_consent_hides_the_patient_from_the_performer_on_the_next_request(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    peer = await Fhir.as_organization(client, pool, network.peer)
    posted = await clinic.ok("POST", "", referral_transaction(network))
    patient_id = posted["entry"][0]["resource"]["id"]
    consent = posted["entry"][1]["resource"]
    referral_id = posted["entry"][3]["resource"]["id"]
    assert (await peer.get(f"Patient/{patient_id}")).status_code == 200
    before = await peer.ok("GET", f"ServiceRequest/{referral_id}")
    assert before["reasonCode"]

    revoked = await clinic.ok(
        "PUT",
        f"Consent/{consent['id']}",
        {**consent, "status": "inactive"},
        **{"if-match": 'W/"1"'},
    )
    assert revoked["status"] == "inactive"

    refused = await peer.get(f"Patient/{patient_id}")
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["details"]["coding"][0]["code"] == "CONSENT_REVOKED"
    stub = await peer.ok("GET", f"ServiceRequest/{referral_id}")
    assert "reasonCode" not in stub
    assert {"code": "REDACTED"}.items() <= stub["meta"]["security"][-1].items()
    bundle = await peer.ok("GET", f"Task?_id={referral_id}&_include=Task:patient")
    assert [r["resourceType"] for r in entries(bundle)] == ["Task"]
    assert "Okafor" not in str(peer.seen[-1])
