"""Procedure through the FHIR door: a light recipient records what it delivered, the Task's
output lists it, searches find it, consent and tenancy hold, transactions stay all-or-nothing."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_flows import procedure
from fhir_support import Fhir, entries, issue_expressions
from network import Network

from api.domain.referrals import Transition
from api.services import consents, referrals
from api.services.referrals import CreateReferral

HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
START = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


@pytest.fixture
async def stranger(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.stranger)


async def _referral(network: Network, *moves: Transition) -> dict[str, Any]:
    """A referral clinic → peer organization moved along `moves`, as its Task."""
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    for move in moves:
        view = await referrals.transition_referral(
            network.uow(), network.as_peer, view.referral.id, move
        )
    return {"id": str(view.referral.id), "for": {"reference": f"Patient/{network.patient.id}"}}


def _delivered(task: dict[str, Any], network: Network, **elements: Any) -> dict[str, Any]:
    """45 minutes of peer services, 3 units billed (elements override)."""
    given: dict[str, Any] = {
        "category": {"coding": [{"system": "http://snomed.info/sct", "code": "410606002"}]},
        "performedPeriod": {
            "start": START.isoformat(),
            "end": (START + timedelta(minutes=45)).isoformat(),
        },
        "extension": [
            {
                "url": "https://peerbridge.example.org/fhir/StructureDefinition/billing",
                "extension": [{"url": "units", "valueUnsignedInt": 3}],
            }
        ],
    }
    return procedure(task, f"Organization/{network.peer.id}", **{**given, **elements})


WORKING = (Transition.ACCEPT, Transition.START)


async def test_performer_records_a_procedure_that_the_task_lists_as_output(
    network: Network, peer: Fhir, clinic: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    response = await peer.request("POST", "Procedure", _delivered(task, network))
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"].endswith(f"/Procedure/{created['id']}/_history/1")
    assert created["basedOn"] == [{"reference": f"ServiceRequest/{task['id']}"}]
    assert created["code"]["coding"][0]["code"] == "H0038"
    assert created["extension"][0]["extension"][0]["valueUnsignedInt"] == 3

    read = await clinic.ok("GET", f"Procedure/{created['id']}")
    assert read["performedPeriod"] == _delivered(task, network)["performedPeriod"]  # as sent
    listed = await clinic.ok("GET", f"Task/{task['id']}")
    assert [o["valueReference"]["reference"] for o in listed["output"]] == [
        f"Procedure/{created['id']}"
    ]
    bundle = await clinic.ok("GET", f"Task?_id={task['id']}&_include=Task:output")
    assert [r["id"] for r in entries(bundle, "include")] == [created["id"]]
    by_output = await peer.ok("GET", f"Task?output=Procedure/{created['id']}")
    assert [t["id"] for t in entries(by_output)] == [task["id"]]


async def test_procedure_search_parameters_narrow_the_deliveries(
    network: Network, peer: Fhir, clinic: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    created = await peer.ok("POST", "Procedure", _delivered(task, network))
    other = await _referral(network, *WORKING)
    not_done = _delivered(other, network, status="not-done")
    del not_done["extension"]
    await peer.ok("POST", "Procedure", not_done)
    before = created["meta"]["lastUpdated"]
    hits = {
        f"based-on=ServiceRequest/{task['id']}": 1,
        f"_id={created['id']}": 1,
        f"patient=Patient/{network.patient.id}": 2,
        f"performer=Organization/{network.peer.id}": 2,
        "status=completed": 1,
        "status=completed,not-done": 2,
        "status=stopped": 0,
        "category=http://snomed.info/sct|410606002": 2,
        "category=999999": 0,
        f"code={HCPCS}|H0038": 2,
        "code=H0038": 2,
        "code=99213": 0,
        "date=2026-10-05": 2,
        "date=ge2026-10-05T14:30:00Z": 2,
        "date=gt2026-10-05": 0,
        "date=lt2026-10-05T14:00:00Z": 0,
        "date=le2026-10-05T14:00:00Z": 2,
        f"_lastUpdated=gt{before.replace('+', '%2B')}": 1,
    }
    for query, expected in hits.items():
        bundle = await clinic.ok("GET", f"Procedure?{query}")
        assert len(entries(bundle)) == expected, query
    page = await clinic.ok("GET", "Procedure?_count=1")
    assert len(entries(page)) == 1
    assert any(link["relation"] == "next" for link in page["link"])


async def test_units_and_period_default_to_the_attendance_recorded_for_the_referral(
    network: Network, peer: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    session = await peer.ok(
        "POST",
        "Encounter",
        {
            "resourceType": "Encounter",
            "extension": [
                {
                    "url": "https://peerbridge.example.org/fhir/StructureDefinition/peer-program",
                    "valueReference": {"reference": f"HealthcareService/{network.program.id}"},
                }
            ],
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [
                {
                    "coding": [
                        {
                            "system": "https://peerbridge.example.org/fhir/CodeSystem/session-format",
                            "code": "group",
                        }
                    ]
                },
                {
                    "coding": [
                        {
                            "system": "https://peerbridge.example.org/fhir/CodeSystem/delivery-mode",
                            "code": "in_person",
                        }
                    ]
                },
            ],
            "period": {
                "start": START.isoformat(),
                "end": (START + timedelta(minutes=90)).isoformat(),
            },
        },
    )
    await peer.ok(
        "POST",
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": task["for"],
            "basedOn": [{"reference": f"ServiceRequest/{task['id']}"}],
            "partOf": {"reference": f"Encounter/{session['id']}"},
        },
    )
    created = await peer.ok("POST", "Procedure", procedure(task, f"Organization/{network.peer.id}"))
    assert created["extension"][0]["extension"][0]["valueUnsignedInt"] == 6
    assert created["performedPeriod"] == {
        "start": "2026-10-05T14:00:00Z",
        "end": "2026-10-05T15:30:00Z",
    }


async def test_only_the_performer_records_and_only_parties_read_a_procedure(
    network: Network, peer: Fhir, clinic: Fhir, stranger: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    refused = await clinic.request("POST", "Procedure", _delivered(task, network))
    assert refused.status_code == 403, refused.text
    assert refused.json()["issue"][0]["code"] == "forbidden"
    # The stranger has no relationship with the patient: the referral is "not on this server"
    # and the delivery "not found", exactly as for ids nobody holds.
    as_stranger = _delivered(task, network)
    as_stranger["performer"] = [{"actor": {"reference": f"Organization/{network.stranger.id}"}}]
    recorded = await stranger.request("POST", "Procedure", as_stranger)
    unknown = await stranger.request(
        "POST",
        "Procedure",
        {**as_stranger, "basedOn": [{"reference": f"ServiceRequest/{uuid.uuid4()}"}]},
    )
    assert recorded.status_code == unknown.status_code == 422, recorded.text
    assert recorded.json() == unknown.json()
    created = await peer.ok("POST", "Procedure", _delivered(task, network))
    read = await stranger.get(f"Procedure/{created['id']}")
    assert read.status_code == 404
    assert "entry" not in await stranger.ok("GET", f"Procedure?_id={created['id']}")
    assert "entry" not in await stranger.ok(
        "GET", f"Procedure?patient=Patient/{network.patient.id}"
    )


async def test_a_procedure_is_recorded_only_for_a_referral_being_worked_or_done(
    network: Network, peer: Fhir
) -> None:
    task = await _referral(network, Transition.ACCEPT)
    response = await peer.request("POST", "Procedure", _delivered(task, network))
    assert response.status_code == 422, response.text
    assert issue_expressions(response.json()) == ["Procedure.basedOn"]


def _untimed(procedure: dict[str, Any]) -> dict[str, Any]:
    """The delivery with a time no one can bill from."""
    untimed = {k: v for k, v in procedure.items() if k != "performedPeriod"}
    return {**untimed, "performedString": "last Tuesday"}


async def test_bad_procedure_input_is_refused_with_the_element_named(
    network: Network, peer: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    office_visit = {"coding": [{"system": HCPCS, "code": "99213"}]}
    cases: list[tuple[dict[str, Any], int, list[str]]] = [
        (_delivered(task, network, code=office_visit), 422, ["Procedure.code.coding[0]"]),
        (_delivered(task, network, status="stopped"), 422, ["Procedure.status"]),
        (_delivered(task, network, status="bogus"), 400, ["Procedure.status"]),
        (
            _delivered(
                task,
                network,
                extension=[
                    {
                        "url": "https://peerbridge.example.org/fhir/StructureDefinition/billing",
                        "extension": [{"url": "units", "valueUnsignedInt": 4}],
                    }
                ],
            ),
            422,
            ["Procedure.extension"],
        ),
        (_untimed(_delivered(task, network)), 422, ["Procedure.performedString"]),
        (
            _delivered(task, network, subject={"reference": f"Patient/{network.peer.id}"}),
            422,
            ["Procedure.subject"],
        ),
        (
            _delivered(task, network, basedOn=[{"reference": f"CarePlan/{task['id']}"}]),
            422,
            ["Procedure.basedOn[0]"],
        ),
        (
            _delivered(
                task,
                network,
                performedPeriod={"start": "2026-10-05T15:00:00Z", "end": "2026-10-05T14:00:00Z"},
            ),
            422,
            ["Procedure.performedPeriod.end"],
        ),
    ]
    for body, status, expressions in cases:
        response = await peer.request("POST", "Procedure", body)
        assert response.status_code == status, (body, response.text)
        assert issue_expressions(response.json()) == expressions, response.text
    assert "entry" not in await peer.ok("GET", f"Procedure?based-on=ServiceRequest/{task['id']}")


async def test_a_revoked_consent_redacts_the_procedure_for_the_performer_on_the_next_request(
    network: Network, peer: Fhir, clinic: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    created = await peer.ok("POST", "Procedure", _delivered(task, network))
    assert (await peer.ok("GET", f"Procedure/{created['id']}"))["code"]

    await consents.revoke_consent(network.uow(), network.as_clinic, network.consent.id)

    stub = await peer.ok("GET", f"Procedure/{created['id']}")
    for phi in ("code", "category", "performedPeriod", "extension"):
        assert phi not in stub
    assert stub["meta"]["security"][-1]["code"] == "REDACTED"
    assert stub["basedOn"] == created["basedOn"] and stub["status"] == "completed"
    (found,) = entries(await peer.ok("GET", f"Procedure?based-on=ServiceRequest/{task['id']}"))
    assert "code" not in found
    assert "H0038" not in str(peer.seen[-1])
    # The requester recorded the patient's data in the first place: it still sees everything.
    assert (await clinic.ok("GET", f"Procedure/{created['id']}"))["code"] == created["code"]


async def test_a_failed_transaction_with_a_procedure_writes_nothing(
    network: Network, peer: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    current = await peer.ok("GET", f"Task/{task['id']}")
    urn = "urn:uuid:6b7c1f0e-93c4-4a8e-9a55-0d7f5d0e2f11"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urn,
                "resource": _delivered(task, network),
                "request": {"method": "POST", "url": "Procedure"},
            },
            {
                "resource": {
                    **current,
                    "status": "completed",
                    "output": [{**_OUTPUT, "valueReference": {"reference": urn}}],
                },
                "request": {"method": "PUT", "url": f"Task/{task['id']}", "ifMatch": 'W/"1"'},
            },
        ],
    }
    response = await peer.request("POST", "", bundle)
    assert response.status_code == 412, response.text
    assert "entry" not in await peer.ok("GET", f"Procedure?based-on=ServiceRequest/{task['id']}")
    again = await peer.ok("GET", f"Task/{task['id']}")
    assert again["status"] == "in-progress" and "output" not in again
    assert again["meta"]["versionId"] == current["meta"]["versionId"]

    bundle["entry"][1]["request"]["ifMatch"] = f'W/"{current["meta"]["versionId"]}"'
    done = await peer.ok("POST", "", bundle)
    assert [e["response"]["status"][:3] for e in done["entry"]] == ["201", "200"]
    assert done["entry"][1]["resource"]["output"][0]["valueReference"]["reference"] == (
        f"Procedure/{done['entry'][0]['resource']['id']}"
    )


_OUTPUT = {
    "type": {
        "coding": [
            {
                "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
                "SDOHCC-CodeSystemTemporaryCodes",
                "code": "resulting-activity",
            }
        ]
    }
}


async def test_a_task_output_names_only_procedures_of_its_own_referral(
    network: Network, peer: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    other = await _referral(network, *WORKING)
    foreign = await peer.ok("POST", "Procedure", _delivered(other, network))
    current = await peer.ok("GET", f"Task/{task['id']}")
    changed = {
        **current,
        "status": "completed",
        "output": [{**_OUTPUT, "valueReference": {"reference": f"Procedure/{foreign['id']}"}}],
    }
    response = await peer.request("PUT", f"Task/{task['id']}", changed)
    assert response.status_code == 422, response.text
    assert issue_expressions(response.json()) == ["Task.output[0].valueReference"]


async def test_an_idempotency_key_replays_the_first_procedure(network: Network, peer: Fhir) -> None:
    task = await _referral(network, *WORKING)
    body = _delivered(task, network)
    first = await peer.ok("POST", "Procedure", body, **{"idempotency-key": "delivery-1"})
    again = await peer.ok("POST", "Procedure", body, **{"idempotency-key": "delivery-1"})
    assert again["id"] == first["id"]
    changed = await peer.request(
        "POST", "Procedure", {**body, "status": "in-progress"}, {"idempotency-key": "delivery-1"}
    )
    assert changed.status_code == 409, changed.text
    listed = await peer.ok("GET", f"Procedure?based-on=ServiceRequest/{task['id']}")
    assert len(entries(listed)) == 1


async def test_a_batch_records_each_procedure_on_its_own(network: Network, peer: Fhir) -> None:
    task = await _referral(network, *WORKING)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": _delivered(task, network), "request": {"method": "POST", "url": url}}
            for url in ("Procedure", "Procedure")
        ],
    }
    bundle["entry"][1]["resource"]["status"] = "stopped"
    done = await peer.ok("POST", "", bundle, **{"idempotency-key": "batch-1"})
    first, second = done["entry"]
    assert first["response"]["status"] == "201 Created"
    assert first["response"]["location"].startswith(f"Procedure/{first['resource']['id']}")
    assert second["response"]["status"].startswith("422")
    outcome = second["response"]["outcome"]
    assert [x for i in outcome["issue"] for x in i["expression"]] == ["Procedure.status"]
    listed = await peer.ok("GET", f"Procedure?based-on=ServiceRequest/{task['id']}")
    assert [p["id"] for p in entries(listed)] == [first["resource"]["id"]]


def _node_problems(resources: list[dict[str, Any]]) -> list[str]:
    """The Node validators' errors (contract suite), or none when Node is not installed."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "contract"))
    from fhir_validator import expand, node_available, validate

    return validate(expand(resources)) if node_available() else []


async def _written(pool: asyncpg.Pool, procedure_id: str) -> tuple[int, int]:
    """(updateProcedure audit records, ProcedureUpdated outbox events) for the Procedure."""
    async with pool.acquire() as db:
        audited = await db.fetchval(
            "SELECT count(*) FROM audit_events WHERE operation = 'updateProcedure' "
            "AND outcome = $2 AND resource_id = $1::uuid",
            procedure_id,
            "success",
        )
        events = await db.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'ProcedureUpdated' "
            "AND aggregate_id = $1::uuid",
            procedure_id,
        )
    return audited, events


async def test_the_performer_updates_its_procedure_with_if_match(
    network: Network, peer: Fhir, clinic: Fhir, pool: asyncpg.Pool
) -> None:
    task = await _referral(network, *WORKING)
    created = await peer.ok("POST", "Procedure", _delivered(task, network))
    changed = {
        **created,
        "status": "in-progress",
        "extension": [
            {
                "url": "https://peerbridge.example.org/fhir/StructureDefinition/billing",
                "extension": [{"url": "units", "valueUnsignedInt": 2}],
            }
        ],
    }
    response = await peer.request(
        "PUT", f"Procedure/{created['id']}", changed, {"If-Match": 'W/"1"'}
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["meta"]["versionId"] == "2"
    assert response.headers["etag"] == 'W/"2"'
    assert response.headers["location"].endswith(f"/Procedure/{created['id']}/_history/2")
    assert updated["status"] == "in-progress"
    assert updated["extension"][0]["extension"][0]["valueUnsignedInt"] == 2
    assert updated["basedOn"] == created["basedOn"]
    read = await clinic.ok("GET", f"Procedure/{created['id']}")
    assert read["meta"]["versionId"] == "2" and read["status"] == "in-progress"
    assert _node_problems([updated, read]) == []
    assert await _written(pool, created["id"]) == (1, 1)

    stale = await peer.request("PUT", f"Procedure/{created['id']}", changed, {"If-Match": 'W/"1"'})
    assert stale.status_code == 412, stale.text
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert stale.json()["issue"][0]["code"] == "conflict"
    assert (await peer.ok("GET", f"Procedure/{created['id']}"))["meta"]["versionId"] == "2"
    assert await _written(pool, created["id"]) == (1, 1)

    malformed = await peer.request("PUT", f"Procedure/{created['id']}", changed, {"If-Match": "2"})
    assert malformed.status_code == 400, malformed.text


async def test_only_the_recording_performer_updates_a_procedure(
    network: Network, peer: Fhir, clinic: Fhir, stranger: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    created = await peer.ok("POST", "Procedure", _delivered(task, network))
    changed = {**created, "status": "in-progress"}
    # The clinic knows the patient and is told why; to the stranger it does not exist.
    for other, status, code in ((clinic, 403, "forbidden"), (stranger, 404, "not-found")):
        refused = await other.request(
            "PUT", f"Procedure/{created['id']}", changed, {"If-Match": 'W/"1"'}
        )
        assert refused.status_code == status, refused.text
        assert refused.json()["issue"][0]["code"] == code
    again = await peer.ok("GET", f"Procedure/{created['id']}")
    assert again["status"] == "completed" and again["meta"]["versionId"] == "1"


async def test_a_procedure_update_keeps_its_referral_patient_and_performer(
    network: Network, peer: Fhir
) -> None:
    task = await _referral(network, *WORKING)
    other = await _referral(network, *WORKING)
    created = await peer.ok("POST", "Procedure", _delivered(task, network))
    url = f"Procedure/{created['id']}"
    cases: list[tuple[dict[str, Any], list[str]]] = [
        (
            {**created, "basedOn": [{"reference": f"ServiceRequest/{other['id']}"}]},
            ["Procedure.basedOn"],
        ),
        (
            {**created, "subject": {"reference": f"Patient/{network.peer.id}"}},
            ["Procedure.subject"],
        ),
        (
            {
                **created,
                "performer": [{"actor": {"reference": f"Organization/{network.stranger.id}"}}],
            },
            ["Procedure.performer"],
        ),
        ({**created, "id": other["id"]}, ["Procedure.id"]),
    ]
    for body, expressions in cases:
        response = await peer.request("PUT", url, body, {"If-Match": 'W/"1"'})
        assert response.status_code in (400, 422), (body, response.text)
        assert issue_expressions(response.json()) == expressions, response.text
    kept = await peer.ok("GET", url)
    assert kept["meta"]["versionId"] == "1" and kept["basedOn"] == created["basedOn"]


async def test_the_capability_statement_lists_procedure_update(client: httpx.AsyncClient) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    (procedure_entry,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Procedure"]
    assert "update" in [i["code"] for i in procedure_entry["interaction"]]
    assert procedure_entry["versioning"] == "versioned-update"
