"""The FHIR REST door through the ASGI app: reads, searches, errors, conditional updates."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fhir_support import Fhir, entries, issue_expressions
from network import Network

from api.db.uow import PostgresUnitOfWork
from api.services import referrals
from api.services.referrals import CreateReferral


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def _refer(network: Network) -> str:
    view = await referrals.create_referral(
        PostgresUnitOfWork(network.pool),
        network.as_clinic,
        CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
            reason_text="low mood",
        ),
    )
    return str(view.referral.id)


async def test_metadata_is_a_capability_statement_for_fhir_4_0_1(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert {"Task", "ServiceRequest", "Consent", "Patient", "Procedure"} <= types


async def test_without_a_token_the_fhir_api_answers_401_with_an_operation_outcome(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/fhir/Task")
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_performer_reads_service_request_and_task_with_etag(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    response = await peer.get(f"ServiceRequest/{referral_id}")
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == 'W/"1"'
    sr = response.json()
    assert sr["subject"]["reference"] == f"Patient/{network.patient.id}"
    task = await peer.ok("GET", f"Task/{referral_id}")
    assert task["focus"]["reference"] == f"ServiceRequest/{referral_id}"
    assert task["businessStatus"]["coding"][0]["code"] == "2.0"
    again = await peer.ok("GET", f"Task/{referral_id}/_history/1")
    assert again["id"] == referral_id
    assert (await peer.get(f"Task/{referral_id}/_history/7")).status_code == 404


async def test_stranger_cannot_read_a_referral_between_other_organizations(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    referral_id = await _refer(network)
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    response = await stranger.get(f"Task/{referral_id}")
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"


async def test_task_search_with_includes_and_next_links(network: Network, peer: Fhir) -> None:
    ids = [await _refer(network) for _ in range(3)]
    bundle = await peer.ok(
        "GET",
        f"Task?owner=Organization/{network.peer.id}&status=requested&_count=2"
        "&_include=Task:focus&_include=Task:patient",
    )
    assert bundle["type"] == "searchset"
    matches = entries(bundle, "match")
    assert len(matches) == 2 and "total" not in bundle
    included = {(r["resourceType"], r["id"]) for r in entries(bundle, "include")}
    assert ("Patient", str(network.patient.id)) in included
    assert {("ServiceRequest", m["id"]) for m in matches} <= included
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    second = await peer.ok("GET", next_url.split("/fhir/", 1)[1])
    assert len(entries(second, "match")) == 1 and second["total"] == 1
    seen = {m["id"] for m in matches} | {m["id"] for m in entries(second, "match")}
    assert seen == set(ids)


async def test_service_request_search_revincludes_task_and_includes_consent(
    network: Network, clinic: Fhir
) -> None:
    referral_id = await _refer(network)
    bundle = await clinic.ok(
        "GET",
        f"ServiceRequest?patient=Patient/{network.patient.id}&_include=ServiceRequest:patient"
        "&_include=ServiceRequest:supporting-info&_revinclude=Task:focus",
    )
    kinds = {(r["resourceType"], r["id"]) for r in entries(bundle)}
    assert ("Task", referral_id) in kinds
    assert ("Consent", str(network.consent.id)) in kinds
    assert ("Patient", str(network.patient.id)) in kinds


async def test_count_is_capped_and_unknown_parameters_are_refused(peer: Fhir) -> None:
    assert (await peer.get("Task?_count=5000")).status_code == 200
    response = await peer.get("Task?colour=blue")
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["colour"]


async def test_last_updated_gt_polls_only_newer_changes(network: Network, peer: Fhir) -> None:
    first = await _refer(network)
    task = await peer.ok("GET", f"Task/{first}")
    stamp = task["meta"]["lastUpdated"].replace("+", "%2B")
    second = await _refer(network)
    bundle = await peer.ok("GET", f"Task?_lastUpdated=gt{stamp}")
    assert [m["id"] for m in entries(bundle, "match")] == [second]


async def test_patient_search_by_identifier(network: Network, clinic: Fhir) -> None:
    identifier = network.patient.identifiers[0]
    bundle = await clinic.ok("GET", f"Patient?identifier={identifier.system}|{identifier.value}")
    assert [p["id"] for p in entries(bundle)] == [str(network.patient.id)]


async def test_healthcare_service_and_practitioner_role_searches(
    network: Network, clinic: Fhir
) -> None:
    bundle = await clinic.ok(
        "GET", f"HealthcareService?type=support_group&organization=Organization/{network.peer.id}"
    )
    assert [r["id"] for r in entries(bundle)] == [str(network.program.id)]
    roles = await clinic.ok(
        "GET",
        f"PractitionerRole?organization=Organization/{network.peer.id}"
        "&_include=PractitionerRole:practitioner",
    )
    assert {r["resourceType"] for r in entries(roles)} == {"PractitionerRole", "Practitioner"}
    assert (await clinic.ok("GET", f"Organization/{network.peer.id}"))["name"]


async def test_stale_if_match_is_412_and_owner_may_not_change_priority(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    task = await peer.ok("GET", f"Task/{referral_id}")
    accepted = {**task, "status": "accepted"}
    stale = await peer.request("PUT", f"Task/{referral_id}", accepted, {"if-match": 'W/"9"'})
    assert stale.status_code == 412, stale.text
    louder = {**task, "priority": "stat"}
    refused = await peer.request("PUT", f"Task/{referral_id}", louder, {"if-match": 'W/"1"'})
    assert refused.status_code == 403, refused.text
    done = await peer.request("PUT", f"Task/{referral_id}", accepted, {"if-match": 'W/"1"'})
    assert done.status_code == 200, done.text
    assert done.json()["businessStatus"]["coding"][0]["code"] == "3.0"
    assert done.headers["etag"] == 'W/"2"'


async def test_invalid_transition_is_422_with_the_status_element(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    task = await peer.ok("GET", f"Task/{referral_id}")
    response = await peer.request("PUT", f"Task/{referral_id}", {**task, "status": "completed"})
    assert response.status_code == 422, response.text


async def test_bad_input_is_refused_with_the_element_named(clinic: Fhir) -> None:
    bad_boolean = {"resourceType": "Patient", "active": "yes", "name": [{"family": "X"}]}
    response = await clinic.request("POST", "Patient", bad_boolean)
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["Patient.active"]
    unknown = {"resourceType": "Patient", "name": [{"family": "X"}], "colour": "blue"}
    response = await clinic.request("POST", "Patient", unknown)
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["Patient.colour"]
    bad_code = {"resourceType": "Patient", "name": [{"family": "X"}], "gender": "bogus"}
    response = await clinic.request("POST", "Patient", bad_code)
    assert issue_expressions(response.json()) == ["Patient.gender"]
    wrong_target = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "461481000124109"}]},
        "subject": {"reference": "Organization/0f8fad5b-d9cb-469f-a165-70867728950e"},
        "performer": [{"reference": "Organization/0f8fad5b-d9cb-469f-a165-70867728950e"}],
    }
    response = await clinic.request("POST", "ServiceRequest", wrong_target)
    assert response.status_code == 422
    assert issue_expressions(response.json()) == ["ServiceRequest.subject"]
