"""Conditional create of a Patient by identifier (If-None-Exist, Bundle ifNoneExist): the
caller's own patient or one disclosed to it is returned (200), never a second record; another
organization's patient the caller may not see is neither matched nor revealed."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from fhir_flows import referral_transaction
from fhir_support import Fhir, entries, issue_expressions
from network import MRN_SYSTEM, Network
from patient_fidelity import rich_patient


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


def _criteria(sent: dict[str, Any]) -> str:
    identifier = sent["identifier"][1]  # the current MRN
    return f"identifier={identifier['system']}|{identifier['value']}"


async def test_a_patient_is_registered_once_per_identifier(clinic: Fhir) -> None:
    sent = rich_patient()
    condition = {"if-none-exist": _criteria(sent)}
    first = await clinic.request("POST", "Patient", sent, condition)
    assert first.status_code == 201, first.text
    again = await clinic.request("POST", "Patient", rich_patient(), condition)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert again.headers["location"].endswith(f"Patient/{first.json()['id']}/_history/1")
    found = entries(await clinic.ok("GET", f"Patient?{_criteria(sent)}"))
    assert [r["id"] for r in found] == [first.json()["id"]]


async def test_a_transaction_refers_the_patient_the_clinic_already_registered(
    network: Network, clinic: Fhir
) -> None:
    sent = rich_patient()
    existing = await clinic.ok("POST", "Patient", sent)
    bundle = referral_transaction(network)
    bundle["entry"][0]["resource"] = rich_patient()
    bundle["entry"][0]["request"]["ifNoneExist"] = _criteria(sent)
    posted = await clinic.ok("POST", "", bundle)
    statuses = [e["response"]["status"][:3] for e in posted["entry"]]
    assert statuses == ["200", "201", "201", "201", "201"]
    assert posted["entry"][0]["resource"]["id"] == existing["id"]
    service_request = posted["entry"][3]["resource"]
    assert service_request["subject"]["reference"] == f"Patient/{existing['id']}"


async def test_another_organizations_patient_is_matched_only_when_disclosed(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, peer: Fhir
) -> None:
    mrn = network.patient.identifiers[0]
    criteria = {"if-none-exist": f"identifier={mrn.system}|{mrn.value}"}
    sent = {**rich_patient(), "identifier": [{"system": mrn.system, "value": mrn.value}]}
    # The peer organization sees the clinic's patient under consent: that one is the match.
    disclosed = await peer.request("POST", "Patient", sent, criteria)
    assert disclosed.status_code == 200, disclosed.text
    assert disclosed.json()["id"] == str(network.patient.id)
    # A stranger may not see it: its own record is created, and nothing tells it more.
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    created = await stranger.request("POST", "Patient", sent, criteria)
    assert created.status_code == 201, created.text
    assert created.json()["id"] != str(network.patient.id)
    again = await stranger.request("POST", "Patient", sent, criteria)
    assert again.status_code == 200 and again.json()["id"] == created.json()["id"]


async def test_several_matches_are_412_and_bad_criteria_400_naming_the_condition(
    network: Network, peer: Fhir
) -> None:
    mrn = network.patient.identifiers[0]
    sent = {**rich_patient(), "identifier": [{"system": mrn.system, "value": mrn.value}]}
    await peer.ok("POST", "Patient", sent)  # the peer's own record with the clinic's MRN
    criteria = f"identifier={mrn.system}|{mrn.value}"
    several = await peer.request("POST", "Patient", sent, {"if-none-exist": criteria})
    assert several.status_code == 412, several.text
    for bad in (f"identifier={mrn.value}", "name=Okafor", f"family=x&identifier={MRN_SYSTEM}|1"):
        refused = await peer.request("POST", "Patient", sent, {"if-none-exist": bad})
        assert refused.status_code == 400, (bad, refused.text)
        assert issue_expressions(refused.json()) == ["If-None-Exist"], bad
