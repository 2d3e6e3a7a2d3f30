"""A Patient is kept as the clinic sent it — every name, address, telecom, identifier and
extension — and read back unchanged on every path (read, search, include, transaction, GraphQL
`fhir`), or the whole request is refused naming the element. The columns GraphQL shows are
derived from what was sent; a revoked consent hides the kept elements with the rest."""

from __future__ import annotations

import copy
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_flows import referral_transaction
from fhir_support import Fhir, entries, issue_expressions
from graphql_support import GraphQL, error_codes
from network import MRN_SYSTEM, Network
from patient_fidelity import as_returned, ig_patients, rich_patient, sent_form

_PATIENT = """query ($id: ID!) { patient(id: $id) {
    givenName familyName phone email preferredLanguage birthDate gender
    identifiers { system value } fhir } }"""


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def _read_back_everywhere(
    clinic: Fhir, sent: dict[str, Any], created: dict[str, Any]
) -> None:
    expected = sent_form(sent)
    assert as_returned(sent, created) == expected
    read = await clinic.ok("GET", f"Patient/{created['id']}")
    assert read == created
    for identifier in sent.get("identifier", ()):
        found = await clinic.ok(
            "GET", f"Patient?identifier={identifier['system']}|{identifier['value']}"
        )
        assert entries(found) == [created]


@pytest.mark.parametrize("name", sorted(ig_patients()))
async def test_official_ig_patients_are_kept_and_read_back_unchanged(
    name: str, clinic: Fhir, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    sent = ig_patients()[name]
    response = await clinic.request("POST", "Patient", sent)
    assert response.status_code == 201, response.text
    created = response.json()
    await _read_back_everywhere(clinic, sent, created)
    graphql = await GraphQL.as_organization(client, pool, network.clinic)
    patient = (await graphql.data(_PATIENT, id=created["id"]))["patient"]
    assert patient["fhir"] == created
    current = next(n for n in reversed(sent["name"]) if "end" not in n.get("period", {}))
    assert patient["givenName"] == " ".join(current["given"])
    assert patient["familyName"] == current["family"]
    assert patient["identifiers"] == [
        {"system": i["system"], "value": i["value"]} for i in sent["identifier"]
    ]


async def test_every_listed_element_is_kept_and_the_columns_follow_the_current_values(
    clinic: Fhir, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    sent = rich_patient()
    created = await clinic.ok("POST", "Patient", sent)
    await _read_back_everywhere(clinic, sent, created)
    graphql = await GraphQL.as_organization(client, pool, network.clinic)
    patient = (await graphql.data(_PATIENT, id=created["id"]))["patient"]
    assert patient["fhir"] == created
    assert {k: v for k, v in patient.items() if k not in ("fhir", "identifiers")} == {
        "givenName": "María José",  # the official name, not the ended maiden one
        "familyName": "Núñez Ortega",
        "phone": "+1 555 0102",  # rank 1 among current phones (the `old` one is not)
        "email": "majo@example.org",
        "preferredLanguage": "es-MX",
        "birthDate": "1984-03-09",
        "gender": "FEMALE",
    }
    assert [i["value"] for i in patient["identifiers"]] == [i["value"] for i in sent["identifier"]]


async def test_a_transaction_keeps_the_patient_and_the_performer_reads_it_as_sent(
    network: Network, clinic: Fhir, peer: Fhir, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    bundle = referral_transaction(network)
    sent = rich_patient()
    bundle["entry"][0]["resource"] = sent
    posted = await clinic.ok("POST", "", bundle)
    created = posted["entry"][0]["resource"]
    assert as_returned(sent, created) == sent_form(sent)
    referral_id = posted["entry"][3]["resource"]["id"]
    included = await peer.ok("GET", f"Task?_id={referral_id}&_include=Task:patient")
    (patient,) = [r for r in entries(included) if r["resourceType"] == "Patient"]
    assert patient == created
    graphql = await GraphQL.as_organization(client, pool, network.peer)
    assert (await graphql.data(_PATIENT, id=created["id"]))["patient"]["fhir"] == created


async def test_a_revoked_consent_hides_the_kept_elements_on_both_doors(
    network: Network, clinic: Fhir, peer: Fhir, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    bundle = referral_transaction(network)
    sent = rich_patient()
    bundle["entry"][0]["resource"] = sent
    posted = await clinic.ok("POST", "", bundle)
    patient_id = posted["entry"][0]["resource"]["id"]
    consent = posted["entry"][1]["resource"]
    referral_id = posted["entry"][3]["resource"]["id"]
    assert (await peer.ok("GET", f"Patient/{patient_id}"))["address"] == sent["address"]
    await clinic.ok(
        "PUT",
        f"Consent/{consent['id']}",
        {**consent, "status": "inactive"},
        **{"if-match": 'W/"1"'},
    )

    refused = await peer.get(f"Patient/{patient_id}")
    assert refused.status_code == 403
    mrn = sent["identifier"][1]["value"]
    searched = await peer.ok("GET", f"Patient?identifier={MRN_SYSTEM}|{mrn}")
    included = await peer.ok("GET", f"Task?_id={referral_id}&_include=Task:patient")
    assert entries(searched) == []
    assert [r["resourceType"] for r in entries(included)] == ["Task"]
    graphql = await GraphQL.as_organization(client, pool, network.peer)
    body = await graphql.run(_PATIENT, id=patient_id)
    assert body["data"]["patient"] is None
    assert ("patient", "CONSENT_REVOKED") in error_codes(body)
    answers = str([r.json() for r in (refused,)] + [searched, included, body])
    for kept in ("Elm St", "us-core-race", "Ana Li", "Luis", "0102", "imported"):
        assert kept not in answers, kept


_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("an inactive record", {"active": False}, "Patient.active"),
    (
        "a record replaced by another",
        {"link": [{"other": {"reference": "Patient/ehr-1"}, "type": "replaced-by"}]},
        "Patient.link[0].type",
    ),
    (
        "an unknown modifier extension",
        {"modifierExtension": [{"url": "https://ehr.example.org/x", "valueBoolean": True}]},
        "Patient.modifierExtension[0]",
    ),
    ("rules PeerBridge does not know", {"implicitRules": "https://x.example"}, None),
    (
        "a name nobody can list",
        {"name": [{"family": "Doe", "given": ["Jo"], "period": {"end": "2001-01-01"}}]},
        "Patient.name",
    ),
    (
        "an identifier without a system",
        {"identifier": [{"value": "123"}]},
        "Patient.identifier[0]",
    ),
    (
        "the same identifier twice",
        {"identifier": [{"system": "urn:x", "value": "1"}, {"system": "urn:x", "value": "1"}]},
        "Patient.identifier[1]",
    ),
    ("a birth in the future", {"birthDate": "2999"}, "Patient.birthDate"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("why", "elements", "expression"), _REFUSALS, ids=[r[0] for r in _REFUSALS]
)
async def test_what_peerbridge_cannot_honour_is_refused_naming_the_element(
    why: str, elements: dict[str, Any], expression: str | None, clinic: Fhir
) -> None:
    sent = {**rich_patient(), **elements}
    response = await clinic.request("POST", "Patient", sent)
    assert response.status_code == 422, response.text
    assert issue_expressions(response.json()) == [expression or "Patient.implicitRules"]


async def test_managing_organization_may_only_name_the_registering_organization(
    network: Network, clinic: Fhir
) -> None:
    other = {
        **rich_patient(),
        "managingOrganization": {"reference": f"Organization/{network.peer.id}"},
    }
    response = await clinic.request("POST", "Patient", other)
    assert response.status_code == 422
    assert issue_expressions(response.json()) == ["Patient.managingOrganization"]
    own = {"reference": f"Organization/{network.clinic.id}", "display": "Riverside Clinic"}
    sent = {**rich_patient(), "managingOrganization": own}
    created = await clinic.ok("POST", "Patient", sent)
    assert created["managingOrganization"] == own


async def test_identifiers_are_unique_per_organization_without_telling_others(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, clinic: Fhir
) -> None:
    sent = rich_patient()
    created = await clinic.ok("POST", "Patient", sent)
    again = await clinic.request("POST", "Patient", copy.deepcopy(sent))
    assert again.status_code == 409
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    mrn = sent["identifier"][1]["value"]
    assert entries(await stranger.ok("GET", f"Patient?identifier={MRN_SYSTEM}|{mrn}")) == []
    theirs = await stranger.request("POST", "Patient", copy.deepcopy(sent))
    assert theirs.status_code == 201, "another organization's record must not be revealed"
    assert theirs.json()["id"] != created["id"]
    mine = await clinic.ok("GET", f"Patient?identifier={MRN_SYSTEM}|{mrn}")
    assert [r["id"] for r in entries(mine)] == [created["id"]]


_REGISTER = """mutation ($input: RegisterPatientInput!) { registerPatient(input: $input) {
    id givenName familyName phone identifiers { system value } fhir } }"""


async def test_graphql_registration_keeps_what_it_receives(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, clinic: Fhir
) -> None:
    graphql = await GraphQL.as_organization(client, pool, network.clinic)
    identifiers = [
        {"system": MRN_SYSTEM, "value": "GQL-2"},  # two of one system, not in system order
        {"system": MRN_SYSTEM, "value": "GQL-1"},
        {"system": "urn:oid:1.2.3", "value": "A"},
    ]
    sent = {"givenName": "Mary Ann ", "familyName": " de la Cruz", "identifiers": identifiers}
    registered = (await graphql.data(_REGISTER, input=sent))["registerPatient"]
    assert registered["givenName"] == "Mary Ann "  # not trimmed, not merged, not split
    assert registered["familyName"] == " de la Cruz"
    assert registered["identifiers"] == identifiers
    read = await clinic.ok("GET", f"Patient/{registered['id']}")
    assert read == registered["fhir"]
    assert read["name"] == [{"use": "official", "family": " de la Cruz", "given": ["Mary Ann "]}]
    assert [i["value"] for i in read["identifier"]] == ["GQL-2", "GQL-1", "A"]


async def test_graphql_registration_refuses_a_repeated_identifier_naming_it(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    graphql = await GraphQL.as_organization(client, pool, network.clinic)
    twice = [{"system": MRN_SYSTEM, "value": "R-1"}, {"system": MRN_SYSTEM, "value": "R-1"}]
    body = await graphql.run(
        _REGISTER, input={"givenName": "A", "familyName": "B", "identifiers": twice}
    )
    assert error_codes(body) == [("registerPatient", "INVALID_INPUT")]
    (details,) = [e["extensions"]["details"] for e in body["errors"]]
    assert [d["field"] for d in details] == ["identifiers[1]"]


async def test_an_idempotency_key_replays_the_registration_and_refuses_another_body(
    clinic: Fhir,
) -> None:
    sent = rich_patient()
    key = {"idempotency-key": f"register-{sent['identifier'][1]['value']}"}
    first = await clinic.ok("POST", "Patient", sent, **key)
    again = await clinic.ok("POST", "Patient", copy.deepcopy(sent), **key)
    assert again == first
    other = {**sent, "birthDate": "1984-03-10"}
    refused = await clinic.request("POST", "Patient", other, headers=key)
    assert refused.status_code == 409
