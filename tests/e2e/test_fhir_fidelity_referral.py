"""ServiceRequest and Task keep what clinics send (the fidelity rule): each element comes back
as sent on every door — the create response, a read, a search, GraphQL's `fhir` fields — or
the request is refused naming it. Official IG examples included (tests/fixtures/ig)."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_support import Fhir, entries, issue_expressions
from fidelity import PLACER, SNOMED, TASK_CODE, assert_kept, full_service_request, full_task
from graphql_support import GraphQL, error_codes
from network import Network

IG = Path(__file__).resolve().parents[1] / "fixtures" / "ig"
Json = dict[str, Any]

REFERRAL_FHIR = "query($id: ID!) { referral(id: $id) { fhir fhirTask } }"


async def _fhir_on_graphql(gql: GraphQL, referral_id: str) -> Json:
    data = await gql.data(REFERRAL_FHIR, id=referral_id)
    referral: Json = data["referral"]
    return referral


async def test_a_clinic_order_and_its_task_read_back_as_sent_on_every_door(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    peer = await Fhir.as_organization(client, pool, network.peer)
    sent = full_service_request(network)
    created = await clinic.ok("POST", "ServiceRequest", copy.deepcopy(sent))
    assert_kept(sent, created)
    assert created["meta"]["versionId"] == "1"
    for reader in (clinic, peer):
        assert_kept(sent, await reader.ok("GET", f"ServiceRequest/{created['id']}"))
    gql = await GraphQL.as_organization(client, pool, network.peer)
    assert_kept(sent, (await _fhir_on_graphql(gql, created["id"]))["fhir"])

    # Interpreted for searches: any category or code coding sent, the identifier, the
    # requesting organization (the practitioner is kept as sent).
    identifier = sent["identifier"][0]
    for query in (
        "category=410606002",
        f"category={SNOMED}|410606002",
        "category=https://clinic.example.org/category|bh",
        "code=711281004",
        "code=https://clinic.example.org/orders|PEER-GRP",
        f"identifier={PLACER}|{identifier['value']}",
        f"requester=Organization/{network.clinic.id}",
    ):
        found = entries(await peer.ok("GET", f"ServiceRequest?{query}"))
        assert [r["id"] for r in found] == [created["id"]], query
        assert_kept(sent, found[0])
    for query in ("category=clinic_to_peer", "code=461481000124109", "category=http://x|bh"):
        assert entries(await peer.ok("GET", f"ServiceRequest?{query}")) == [], query

    task = full_task(network, f"ServiceRequest/{created['id']}")
    made = await clinic.ok("POST", "Task", copy.deepcopy(task))
    assert_kept(task, made)
    assert made["businessStatus"]["coding"][0]["code"] == "2.0"
    read = await peer.ok("GET", f"Task/{created['id']}")
    assert_kept(task, read)
    assert_kept(
        task, json.loads(json.dumps((await _fhir_on_graphql(gql, created["id"]))["fhirTask"]))
    )
    for query in (
        f"requester=Organization/{network.clinic.id}",
        "code=fulfill",
        "code=https://clinic.example.org/tasks|peer-intake",
        "code=peer-intake,other",
    ):
        found = entries(await peer.ok("GET", f"Task?{query}"))
        assert [t["id"] for t in found] == [created["id"]], query
        assert_kept(task, found[0])
    assert entries(await peer.ok("GET", "Task?code=http://x|peer-intake")) == []
    bundle = await peer.ok("GET", f"Task?_id={created['id']}&_include=Task:focus")
    included = entries(bundle, "include")
    assert [r["resourceType"] for r in included] == ["ServiceRequest"]
    assert_kept(sent, included[0])
    with_refs = await peer.ok(
        "GET",
        f"ServiceRequest?_id={created['id']}&_include=ServiceRequest:requester"
        "&_include=ServiceRequest:supporting-info",
    )
    assert {r["resourceType"] for r in entries(with_refs, "include")} == {"Consent"}

    # The performer moves the Task with the Task it read: the kept elements are unchanged, so
    # only the status moves; the supporter it assigns joins the performers sent.
    accepted = {
        **read,
        "status": "accepted",
        "extension": [
            {
                "url": "https://peerbridge.example.org/fhir/StructureDefinition/assigned-supporter",
                "valueReference": {"reference": f"PractitionerRole/{network.supporter.id}"},
            }
        ],
    }
    version = read["meta"]["versionId"]
    moved = await peer.ok(
        "PUT", f"Task/{created['id']}", accepted, **{"if-match": f'W/"{version}"'}
    )
    assert_kept({**task, "status": "accepted"}, moved)
    order = await clinic.ok("GET", f"ServiceRequest/{created['id']}")
    assert order["performer"] == [
        *sent["performer"],
        {"reference": f"PractitionerRole/{network.supporter.id}"},
    ]
    assert_kept({k: v for k, v in sent.items() if k != "performer"}, order)

    # A kept element is not changed by an update: refused, never dropped or taken.
    edited = {**moved, "note": [{"text": "changed"}]}
    refused = await peer.request("PUT", f"Task/{created['id']}", edited)
    assert refused.status_code == 403
    dropped = {k: v for k, v in moved.items() if k != "identifier"}
    refused = await clinic.request("PUT", f"Task/{created['id']}", dropped)
    assert refused.status_code == 422
    assert issue_expressions(refused.json()) == ["Task.identifier"]


async def test_the_same_order_in_a_transaction_reads_back_as_sent(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    sent = full_service_request(network)
    urn = f"urn:uuid:{uuid.uuid4()}"
    task = full_task(network, urn)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urn,
                "resource": sent,
                "request": {"method": "POST", "url": "ServiceRequest"},
            },
            {"resource": task, "request": {"method": "POST", "url": "Task"}},
        ],
    }
    posted = await clinic.ok("POST", "", copy.deepcopy(bundle))
    order, made = (e["resource"] for e in posted["entry"])
    assert_kept(sent, order)
    assert_kept({**task, "focus": {"reference": f"ServiceRequest/{order['id']}"}}, made)
    assert_kept(sent, await clinic.ok("GET", f"ServiceRequest/{order['id']}"))

    bad = copy.deepcopy(bundle)
    bad["entry"][0]["resource"]["doNotPerform"] = True
    response = await clinic.request("POST", "", bad)
    assert response.status_code == 422
    assert issue_expressions(response.json()) == ["Bundle.entry[0].resource.doNotPerform"]


def _service_request(network: Network, **changes: Any) -> Json:
    resource: Json = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": SNOMED, "code": "461481000124109"}]},
        "subject": {"reference": f"Patient/{network.patient.id}"},
        "performer": [{"reference": f"Organization/{network.peer.id}"}],
    }
    return {**resource, **changes}


@pytest.mark.parametrize(
    "changes, element, text",
    [
        ({"doNotPerform": True}, "ServiceRequest.doNotPerform", "prohibition"),
        (
            {"code": {"coding": [{"system": SNOMED, "code": "467771000124109"}]}},
            "ServiceRequest.code",
            "not a peer-support or behavioural-health service",
        ),
        ({"code": {"text": "peer support"}}, "ServiceRequest.code", "SNOMED CT"),
        ({"implicitRules": "https://clinic.example.org/rules"}, "ServiceRequest.implicitRules", ""),
        (
            {"modifierExtension": [{"url": "https://clinic.example.org/x", "valueBoolean": True}]},
            "ServiceRequest.modifierExtension[0]",
            "modifier",
        ),
        (
            {"requester": {"reference": "Patient/0f8fad5b-d9cb-469f-a165-70867728950e"}},
            "ServiceRequest.requester",
            "PractitionerRole",
        ),
        (
            {"supportingInfo": [{"reference": "Consent/0f8fad5b-d9cb-469f-a165-70867728950e"}]},
            "ServiceRequest.supportingInfo",
            "does not permit",
        ),
        (
            {
                "extension": [
                    {
                        "url": "https://peerbridge.example.org/fhir/StructureDefinition/escalated-from",
                        "valueReference": {
                            "reference": "ServiceRequest/0f8fad5b-d9cb-469f-a165-70867728950e"
                        },
                    }
                ]
            },
            "ServiceRequest.extension[0]",
            "escalateReferral",
        ),
        (
            {
                "extension": [
                    {
                        "url": "https://peerbridge.example.org/fhir/StructureDefinition/shared-data-class",
                        "valueCoding": {
                            "system": "https://peerbridge.example.org/fhir/CodeSystem/data-class",
                            "code": "referral",
                        },
                    }
                ]
                * 2
            },
            "ServiceRequest.extension[1]",
            "per class",
        ),
    ],
)
async def test_what_cannot_be_kept_is_refused_naming_the_element(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    changes: Json,
    element: str,
    text: str,
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    response = await clinic.request("POST", "ServiceRequest", _service_request(network, **changes))
    assert response.status_code == 422, response.text
    assert issue_expressions(response.json()) == [element]
    assert text in response.json()["issue"][0]["details"]["text"]


async def test_a_requester_of_another_organization_is_forbidden(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    other = {"reference": f"Organization/{network.stranger.id}"}
    response = await clinic.request(
        "POST", "ServiceRequest", _service_request(network, requester=other)
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "changes, element",
    [
        ({"status": "accepted"}, "Task.status"),
        ({"statusReason": {"text": "why"}}, "Task.statusReason"),
        ({"lastModified": "2026-11-20T09:16:00Z"}, "Task.lastModified"),
        ({"priority": "stat"}, "Task.priority"),
        (
            {
                "businessStatus": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS",
                            "code": "7.0",
                        }
                    ]
                }
            },
            "Task.businessStatus",
        ),
        (
            {"owner": {"reference": "PractitionerRole/0f8fad5b-d9cb-469f-a165-70867728950e"}},
            "Task.owner",
        ),
        (
            {"requester": {"reference": "Patient/0f8fad5b-d9cb-469f-a165-70867728950e"}},
            "Task.requester",
        ),
        (
            {"output": [{"type": {"text": "x"}, "valueReference": {"reference": "Bundle/1"}}]},
            "Task.output",
        ),
    ],
)
async def test_a_task_element_the_record_owns_is_refused_unless_it_matches(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    changes: Json,
    element: str,
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    order = await clinic.ok("POST", "ServiceRequest", _service_request(network))
    task = {**full_task(network, f"ServiceRequest/{order['id']}"), "priority": "routine", **changes}
    response = await clinic.request("POST", "Task", task)
    assert response.status_code == 422, response.text
    assert issue_expressions(response.json()) == [element]
    # The record's own value is no change: kept.
    bser = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
    same = {
        **full_task(network, f"ServiceRequest/{order['id']}"),
        "priority": "routine",
        "businessStatus": {
            "coding": [{"system": bser, "code": "2.0", "display": "Service Request Created"}]
        },
    }
    made = await clinic.ok("POST", "Task", copy.deepcopy(same))
    assert_kept(same, made)


async def test_a_revoked_consent_hides_kept_elements_from_the_performer_on_both_doors(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    peer = await Fhir.as_organization(client, pool, network.peer)
    gql = await GraphQL.as_organization(client, pool, network.peer)
    sent = full_service_request(network)
    order = await clinic.ok("POST", "ServiceRequest", sent)
    await clinic.ok("POST", "Task", full_task(network, f"ServiceRequest/{order['id']}"))
    secret = "prefers evening groups"
    assert secret in json.dumps(await peer.ok("GET", f"ServiceRequest/{order['id']}"))

    consent = await clinic.ok("GET", f"Consent/{network.consent.id}")
    await clinic.ok(
        "PUT",
        f"Consent/{consent['id']}",
        {**consent, "status": "inactive"},
        **{"if-match": f'W/"{consent["meta"]["versionId"]}"'},
    )

    hidden = [
        await peer.ok("GET", f"ServiceRequest/{order['id']}"),
        await peer.ok("GET", f"Task/{order['id']}"),
        *entries(await peer.ok("GET", f"ServiceRequest?_id={order['id']}")),
        *entries(await peer.ok("GET", f"Task?_id={order['id']}&_include=Task:focus")),
        *(await _fhir_on_graphql(gql, order["id"])).values(),
    ]
    assert len(hidden) == 7
    for resource in hidden:
        text = json.dumps(resource)
        for withheld in (
            secret,
            "call before 5pm",
            "low mood",
            "Ada Testperson",
            "Dr Jan Water",
            "410606002",
            "PO-",
        ):
            assert withheld not in text, (resource["resourceType"], withheld)
        assert resource["meta"]["security"][-1]["code"] == "REDACTED"
    # The requester, who holds the record, still reads it all.
    assert_kept(sent, await clinic.ok("GET", f"ServiceRequest/{order['id']}"))


async def test_graphql_create_referral_keeps_or_refuses_what_it_receives(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    gql = await GraphQL.as_organization(client, pool, network.clinic)
    mutation = """
      mutation($input: CreateReferralInput!) {
        createReferral(input: $input) {
          id reasonText reasonCodes { system code display } sharedDataClasses fhir
        }
      }"""
    base = {"patientId": str(network.patient.id), "performerOrganizationId": str(network.peer.id)}
    reason = "  isolated since the move\nwants a group  "
    codes = [{"system": SNOMED, "code": "35489007", "display": "Depressive disorder"}]
    created = (
        await gql.data(mutation, input={**base, "reasonText": reason, "reasonCodes": codes})
    )["createReferral"]
    assert created["reasonText"] == reason
    assert created["reasonCodes"] == codes
    assert {"text": reason} in created["fhir"]["reasonCode"]
    for bad, path in (
        ({"reasonText": "   "}, "createReferral"),
        ({"reasonCodes": [{"system": SNOMED, "code": ""}]}, "createReferral"),
        ({"sharedDataClasses": ["REFERRAL", "REFERRAL"]}, "createReferral"),
    ):
        body = await gql.run(mutation, input={**base, **bad})
        assert error_codes(body) == [(path, "INVALID_INPUT")], bad


def _repoint(resource: Json, targets: dict[str, str]) -> Json:
    text = json.dumps(resource)
    for old, new in targets.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    repointed: Json = json.loads(text)
    repointed.pop("id", None)
    return repointed


def _example(path: str) -> Json:
    example: Json = json.loads((IG / path).read_text())
    return example


async def test_the_gravity_examples_are_refused_for_food_and_kept_for_peer_support(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    targets = {"Patient/pat-53234": f"Patient/{network.patient.id}"}
    food = _repoint(
        _example(
            "sdoh-clinicalcare/SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample.json"
        ),
        targets,
    )
    food["performer"] = [{"reference": f"Organization/{network.peer.id}"}]
    refused = await clinic.request("POST", "ServiceRequest", food)
    assert refused.status_code == 422
    assert issue_expressions(refused.json()) == ["ServiceRequest.code"]
    assert (
        "PeerBridge carries peer-support referrals" in refused.json()["issue"][0]["details"]["text"]
    )

    peer_support = {
        **food,
        "code": {
            "coding": [
                {"system": SNOMED, "code": "461481000124109", "display": "Referral to peer support"}
            ]
        },
    }
    order = await clinic.ok("POST", "ServiceRequest", copy.deepcopy(peer_support))
    assert_kept(peer_support, order)
    assert_kept(peer_support, await clinic.ok("GET", f"ServiceRequest/{order['id']}"))
    sdoh = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
    found = entries(await clinic.ok("GET", f"ServiceRequest?category={sdoh}|food-insecurity"))
    assert [r["id"] for r in found] == [order["id"]]

    targets["ServiceRequest/SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample"] = (
        f"ServiceRequest/{order['id']}"
    )
    targets["Organization/SDOHCC-OrganizationCoordinationPlatformExample"] = (
        f"Organization/{network.peer.id}"
    )
    task = _repoint(
        _example(
            "sdoh-clinicalcare/SDOHCC-TaskReferralManagementOrderFulfillmentAcceptedExample.json"
        ),
        targets,
    )
    refused = await clinic.request("POST", "Task", task)
    assert refused.status_code == 422
    assert issue_expressions(refused.json()) == ["Task.status"]
    requested = {**task, "status": "requested"}
    made = await clinic.ok("POST", "Task", copy.deepcopy(requested))
    assert_kept(requested, made)
    assert_kept(requested, await clinic.ok("GET", f"Task/{order['id']}"))


async def test_the_bser_examples_are_kept_once_made_a_peer_support_order(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    targets = {
        "Patient/patient-us-core-patient-eve-everywoman": f"Patient/{network.patient.id}",
        "Consent/consent-bser-patientconsent-eve-everywoman": f"Consent/{network.consent.id}",
    }
    order = _repoint(_example("bser/servicerequest-referral-servicerequest.json"), targets)
    order["performer"] = [{"reference": f"Organization/{network.peer.id}"}]
    refused = await clinic.request("POST", "ServiceRequest", order)
    assert issue_expressions(refused.json()) == ["ServiceRequest.code"]
    order["code"] = {
        "coding": [
            {"system": SNOMED, "code": "461481000124109", "display": "Referral to peer support"}
        ]
    }
    created = await clinic.ok("POST", "ServiceRequest", copy.deepcopy(order))
    assert_kept(order, created)
    for query in ("identifier=88888888", "identifier=|99999999"):
        found = entries(await clinic.ok("GET", f"ServiceRequest?{query}"))
        assert [r["id"] for r in found] == [created["id"]], query

    targets["ServiceRequest/servicerequest-referral-servicerequest"] = (
        f"ServiceRequest/{created['id']}"
    )
    task = _repoint(_example("bser/task-referral-task.json"), targets)
    refused = await clinic.request("POST", "Task", task)
    assert refused.status_code == 422
    assert sorted(issue_expressions(refused.json())) == [
        "Task.businessStatus",
        "Task.code",
        "Task.output",
        "Task.owner",
    ]
    task = {
        **{k: v for k, v in task.items() if k not in ("businessStatus", "output")},
        "code": {"coding": [{"system": TASK_CODE, "code": "fulfill"}]},
        "owner": {"reference": f"Organization/{network.peer.id}"},
    }
    made = await clinic.ok("POST", "Task", copy.deepcopy(task))
    assert_kept(task, made)
    assert_kept(task, await clinic.ok("GET", f"Task/{created['id']}"))
