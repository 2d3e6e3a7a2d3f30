"""Conditional create (If-None-Exist, Bundle.entry.request.ifNoneExist) and the one Task of a
referral: a repeated POST is never a second resource."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import asyncpg
import httpx
from fhir_support import Fhir, entries, issue_expressions
from graphql_support import GraphQL
from network import Network

from api.services import referrals
from api.services.referrals import CreateReferral

SNOMED = "http://snomed.info/sct"
PLACER = "urn:oid:2.16.840.1.113883.3.9999.7"
Json = dict[str, Any]


def service_request(network: Network, placer: str | None = None) -> Json:
    resource: Json = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": SNOMED, "code": "461481000124109"}]},
        "subject": {"reference": f"Patient/{network.patient.id}"},
        "requester": {"reference": f"Organization/{network.clinic.id}"},
        "performer": [{"reference": f"Organization/{network.peer.id}"}],
    }
    if placer:
        resource["identifier"] = [{"system": PLACER, "value": placer}]
    return resource


def task(network: Network, focus: str) -> Json:
    return {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": focus},
        "for": {"reference": f"Patient/{network.patient.id}"},
        "requester": {"reference": f"Organization/{network.clinic.id}"},
        "owner": {"reference": f"Organization/{network.peer.id}"},
        "note": [{"text": "prefers evening sessions"}],
    }


async def test_a_service_request_is_created_once_per_identifier(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    placer = f"PO-{secrets.token_hex(4)}"
    condition = {"if-none-exist": f"identifier={PLACER}|{placer}"}
    first = await clinic.request(
        "POST", "ServiceRequest", service_request(network, placer), condition
    )
    assert first.status_code == 201, first.text
    again = await clinic.request(
        "POST", "ServiceRequest", service_request(network, placer), condition
    )
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"].endswith(f"ServiceRequest/{first.json()['id']}/_history/1")
    found = entries(await clinic.ok("GET", f"ServiceRequest?identifier={PLACER}|{placer}"))
    assert [r["id"] for r in found] == [first.json()["id"]]
    # Other spellings of the same identifier find it too; another value does not.
    for query, hits in ((f"identifier={placer}", 1), ("identifier=PO-none", 0)):
        found = entries(await clinic.ok("GET", f"ServiceRequest?{query}"))
        assert len(found) == hits, query

    # Two orders with the same number (sent without a condition) make the condition ambiguous.
    duplicate = await clinic.request("POST", "ServiceRequest", service_request(network, placer))
    assert duplicate.status_code == 201
    ambiguous = await clinic.request(
        "POST", "ServiceRequest", service_request(network, placer), condition
    )
    assert ambiguous.status_code == 412
    assert ambiguous.json()["issue"][0]["code"] == "conflict"


async def test_identical_conditional_creates_sent_together_create_once(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    placer = f"PO-{secrets.token_hex(4)}"
    condition = {"if-none-exist": f"identifier={PLACER}|{placer}"}
    answers = await asyncio.gather(
        *(
            clinic.request("POST", "ServiceRequest", service_request(network, placer), condition)
            for _ in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    found = entries(await clinic.ok("GET", f"ServiceRequest?identifier={PLACER}|{placer}"))
    assert len(found) == 1


async def test_criteria_the_table_does_not_allow_are_refused_naming_the_header(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    for criteria in ("status=active", "", "identifier=", "Task?identifier=x|y", "_id=x"):
        response = await clinic.request(
            "POST", "ServiceRequest", service_request(network), {"if-none-exist": criteria}
        )
        assert response.status_code == 400, criteria
        assert issue_expressions(response.json()) == ["If-None-Exist"], criteria
    # Patient and the like do not take it here (fid-patient adds Patient to the same table).
    response = await clinic.request(
        "POST", "Consent", {"resourceType": "Consent"}, {"if-none-exist": "patient=x"}
    )
    assert response.status_code == 400
    metadata = await clinic.ok("GET", "metadata")
    conditional = {r["type"] for r in metadata["rest"][0]["resource"] if r.get("conditionalCreate")}
    assert {"ServiceRequest", "Task"} <= conditional
    assert "Consent" not in conditional


async def test_a_service_request_has_one_task_created_by_its_requester(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    peer = await Fhir.as_organization(client, pool, network.peer)
    created = await clinic.ok("POST", "ServiceRequest", service_request(network))
    focus = f"ServiceRequest/{created['id']}"

    refused = await peer.request("POST", "Task", task(network, focus))
    assert refused.status_code == 403  # only the requester creates it

    implicit = await peer.request("GET", f"Task/{created['id']}")
    assert implicit.headers["etag"] == 'W/"1"'  # the referral's workflow, before its Task
    first = await clinic.request("POST", "Task", task(network, focus))
    assert first.status_code == 201, first.text
    assert first.json()["id"] == created["id"]
    assert first.json()["note"] == [{"text": "prefers evening sessions"}]
    # Created after its ServiceRequest, the Task is a new version: a reader holding version 1
    # gets the Task in full, and a poller sees it changed.
    assert first.json()["meta"]["versionId"] == "2"
    assert first.json()["meta"]["lastUpdated"] > created["meta"]["lastUpdated"]
    fresh = await peer.request("GET", f"Task/{created['id']}", headers={"if-none-match": 'W/"1"'})
    assert fresh.status_code == 200
    assert fresh.json()["note"] == [{"text": "prefers evening sessions"}]
    polled = await peer.ok("GET", f"Task?_lastUpdated=gt{created['meta']['lastUpdated']}")
    assert [t["id"] for t in entries(polled)] == [created["id"]]

    second = await clinic.request("POST", "Task", task(network, focus))
    assert second.status_code == 422
    assert issue_expressions(second.json()) == ["Task.focus"]
    assert f"Task/{created['id']}" in second.json()["issue"][0]["details"]["text"]

    condition = {"if-none-exist": f"focus={focus}"}
    replayed = await clinic.request("POST", "Task", task(network, focus), condition)
    assert replayed.status_code == 200
    assert replayed.json() == first.json()
    read = await peer.ok("GET", f"Task/{created['id']}")
    assert read["note"] == [{"text": "prefers evening sessions"}]


async def test_a_referral_created_through_graphql_already_has_its_task(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    focus = f"ServiceRequest/{view.referral.id}"
    response = await clinic.request("POST", "Task", task(network, focus))
    assert response.status_code == 422
    assert issue_expressions(response.json()) == ["Task.focus"]
    existing = await clinic.request(
        "POST", "Task", task(network, focus), {"if-none-exist": f"focus={focus}"}
    )
    assert existing.status_code == 200
    assert existing.json()["id"] == str(view.referral.id)
    assert "note" not in existing.json()  # the POSTed Task was not taken


async def test_a_transaction_sent_twice_with_conditions_creates_nothing_the_second_time(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    placer = f"PO-{secrets.token_hex(4)}"
    sr_urn, task_urn = (f"urn:uuid:{uuid.uuid4()}" for _ in range(2))
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": sr_urn,
                "resource": service_request(network, placer),
                "request": {
                    "method": "POST",
                    "url": "ServiceRequest",
                    "ifNoneExist": f"identifier={PLACER}|{placer}",
                },
            },
            {
                "fullUrl": task_urn,
                "resource": task(network, sr_urn),
                "request": {"method": "POST", "url": "Task", "ifNoneExist": f"focus={sr_urn}"},
            },
        ],
    }
    first = await clinic.ok("POST", "", bundle)
    assert [e["response"]["status"] for e in first["entry"]] == ["201 Created"] * 2
    again = await clinic.ok("POST", "", bundle)
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 2
    assert [e["resource"]["id"] for e in again["entry"]] == [
        e["resource"]["id"] for e in first["entry"]
    ]
    assert again["entry"][1]["resource"]["note"] == [{"text": "prefers evening sessions"}]

    bad = {
        **bundle,
        "entry": [
            {
                **bundle["entry"][0],
                "request": {**bundle["entry"][0]["request"], "ifNoneExist": "status=active"},
            }
        ],
    }
    response = await clinic.request("POST", "", bad)
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["Bundle.entry[0].request.ifNoneExist"]
    batch = {**bundle, "type": "batch", "entry": [bundle["entry"][0]]}
    answered = await clinic.ok("POST", "", batch)
    assert answered["entry"][0]["response"]["status"] == "200 OK"
    gql = await GraphQL.as_organization(client, pool, network.clinic)
    listed = await gql.data("{ referrals(first: 50) { edges { node { id } } } }")
    assert len(listed["referrals"]["edges"]) == 1
