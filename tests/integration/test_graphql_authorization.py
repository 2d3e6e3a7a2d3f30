"""Authorization through GraphQL: the token, scopes, tenancy and consent are decided by the
services and arrive as null fields with an error at their path, never as silent gaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql_support import GraphQL, error_codes
from network import Network

from api.app import create_app
from api.settings import Settings

CREATE = """
mutation Create($input: CreateReferralInput!) {
  createReferral(input: $input) { id version status }
}"""
READ = """
query Read($id: ID!) {
  referral(id: $id) {
    id status reasonText reasonCodes { code } patient { givenName } fhir
  }
}"""


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.peer)


async def _refer(clinic: GraphQL, network: Network, **extra: Any) -> dict[str, Any]:
    data = await clinic.data(
        CREATE,
        input={
            "patientId": str(network.patient.id),
            "performerOrganizationId": str(network.peer.id),
            "reasonText": "low mood",
            "reasonCodes": [{"system": "http://snomed.info/sct", "code": "35489007"}],
            **extra,
        },
    )
    return dict(data["createReferral"])


async def test_without_a_token_only_the_sdl_answers(client: httpx.AsyncClient) -> None:
    anonymous = GraphQL(client, None)

    sdl = await anonymous.post("{ _service { sdl } }")
    refused = await anonymous.post("{ _service { sdl } viewer { clientId } }")
    via_fragment = await anonymous.post(
        "query { ...F } fragment F on Query { referrals { edges { cursor } } }"
    )

    assert sdl.status_code == 200
    assert (
        '@link(url: "https://specs.apollo.dev/federation/v2.9"'
        in sdl.json()["data"]["_service"]["sdl"]
    )
    for response in (refused, via_fragment):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json() == {
            "data": None,
            "errors": [
                {
                    "message": "a bearer access token is required",
                    "extensions": {"code": "UNAUTHENTICATED"},
                }
            ],
        }


async def test_a_missing_scope_nulls_that_field_with_forbidden_and_the_needed_scope(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    directory_only = await GraphQL.as_organization(
        client, pool, network.peer, scopes="system/HealthcareService.rs"
    )

    body = await directory_only.run(
        "{ peerPrograms { edges { node { name } } } referrals { edges { cursor } } }"
    )

    assert body["data"]["peerPrograms"]["edges"] == [{"node": {"name": "Recovery Circle"}}]
    assert body["data"]["referrals"] is None
    (error,) = body["errors"]
    assert error["path"] == ["referrals"]
    assert error["extensions"] == {"code": "FORBIDDEN", "neededScope": "user/ServiceRequest.rs"}


async def test_an_unrelated_organization_is_told_another_organizations_records_do_not_exist(
    client: httpx.AsyncClient, pool: asyncpg.Pool, clinic: GraphQL, network: Network
) -> None:
    referral = await _refer(clinic, network)
    stranger = await GraphQL.as_organization(client, pool, network.stranger)

    body = await stranger.run(READ, id=referral["id"])
    patient = await stranger.run(
        "query($id: ID!) { patient(id: $id) { givenName } }", id=str(network.patient.id)
    )

    assert body["data"] == {"referral": None}
    assert error_codes(body) == [("referral", "NOT_FOUND")]
    assert patient["data"] == {"patient": None}
    assert error_codes(patient) == [("patient", "NOT_FOUND")]


async def test_revoked_consent_leaves_the_performer_a_stub_with_errors_at_each_phi_field(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    referral = await _refer(clinic, network)
    before = await peer.data(READ, id=referral["id"])
    assert before["referral"]["reasonText"] == "low mood"
    assert before["referral"]["patient"] == {"givenName": "Ada"}

    revoked = await clinic.data(
        "mutation($input: RevokeConsentInput!) { revokeConsent(input: $input) { status } }",
        input={"consentId": str(network.consent.id), "reason": "patient asked"},
    )
    assert revoked["revokeConsent"]["status"] == "REVOKED"
    after = await peer.run(READ, id=referral["id"])
    inbox = await peer.run(
        "{ referrals(filter: {box: INBOX}) { edges { node { id status reasonText } } } }"
    )

    stub = after["data"]["referral"]
    assert stub["id"] == referral["id"]
    assert stub["status"] == "REQUESTED"
    assert stub["reasonText"] is None and stub["reasonCodes"] is None and stub["patient"] is None
    assert sorted(error_codes(after)) == [
        ("referral.patient", "CONSENT_REVOKED"),
        ("referral.reasonCodes", "CONSENT_REVOKED"),
        ("referral.reasonText", "CONSENT_REVOKED"),
    ]
    assert "reasonCode" not in stub["fhir"]
    assert stub["fhir"]["resourceType"] == "ServiceRequest"
    assert inbox["data"]["referrals"]["edges"] == [
        {"node": {"id": referral["id"], "status": "REQUESTED", "reasonText": None}}
    ]
    assert error_codes(inbox) == [("referrals.edges.0.node.reasonText", "CONSENT_REVOKED")]
    # The requester's own view is untouched.
    assert (await clinic.data(READ, id=referral["id"]))["referral"]["reasonText"] == "low mood"


async def test_domain_errors_carry_their_codes(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    referral = await _refer(clinic, network)
    move = "mutation($input: ReferralTransitionInput!) { %s(input: $input) { status } }"

    bad_id = await peer.run(READ, id="not-a-uuid")
    missing = await peer.run(READ, id="00000000-0000-4000-8000-000000000000")
    too_big = await peer.run("{ referrals(first: 101) { edges { cursor } } }")
    bad_cursor = await peer.run('{ referrals(after: "bm9wZQ") { edges { cursor } } }')
    early = await peer.run(move % "completeReferral", input={"referralId": referral["id"]})
    stale = await peer.run(
        move % "acceptReferral", input={"referralId": referral["id"], "expectedVersion": 7}
    )
    no_reason = await peer.run(move % "rejectReferral", input={"referralId": referral["id"]})
    wrong_side = await clinic.run(move % "acceptReferral", input={"referralId": referral["id"]})

    assert error_codes(bad_id) == [("referral", "INVALID_INPUT")]
    assert bad_id["errors"][0]["extensions"]["details"] == [
        {"field": "id", "message": "is not a valid id"}
    ]
    assert error_codes(missing) == [("referral", "NOT_FOUND")]
    assert error_codes(too_big) == [("referrals", "INVALID_INPUT")]
    assert too_big["errors"][0]["extensions"]["details"][0]["field"] == "first"
    assert error_codes(bad_cursor) == [("referrals", "INVALID_INPUT")]
    assert error_codes(early) == [("completeReferral", "INVALID_TRANSITION")]
    assert error_codes(stale) == [("acceptReferral", "CONFLICT")]
    assert error_codes(no_reason) == [("rejectReferral", "INVALID_INPUT")]
    assert error_codes(wrong_side) == [("acceptReferral", "INVALID_TRANSITION")]


async def test_an_idempotency_key_replays_the_first_result_and_refuses_another_request(
    clinic: GraphQL, network: Network
) -> None:
    first = await _refer(clinic, network, idempotencyKey="order-42")
    again = await _refer(clinic, network, idempotencyKey="order-42")
    other = await clinic.run(
        CREATE,
        input={
            "patientId": str(network.patient.id),
            "performerOrganizationId": str(network.peer.id),
            "reasonText": "something else",
            "idempotencyKey": "order-42",
        },
    )

    assert again["id"] == first["id"]
    assert error_codes(other) == [("createReferral", "CONFLICT")]


async def test_keyset_cursors_walk_the_inbox_once_newest_first(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    created = [(await _refer(clinic, network))["id"] for _ in range(5)]
    seen: list[str] = []
    after = None
    while True:
        page = (
            await peer.data(
                "query($after: String) { referrals(first: 2, after: $after) {"
                " edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                after=after,
            )
        )["referrals"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert seen == list(reversed(created))


async def test_node_and_entities_obey_the_same_rules(
    client: httpx.AsyncClient, pool: asyncpg.Pool, clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    referral = await _refer(clinic, network)
    stranger = await GraphQL.as_organization(client, pool, network.stranger)
    entities = """query($reps: [_Any!]!) { _entities(representations: $reps) { __typename
        ... on Patient { givenName } ... on Referral { status } ... on PeerProgram { name } } }"""
    reps = [
        {"__typename": "Patient", "id": str(network.patient.id)},
        {"__typename": "Referral", "id": referral["id"]},
        {"__typename": "PeerProgram", "id": str(network.program.id)},
    ]

    node = await peer.data("query($id: ID!) { node(id: $id) { __typename id } }", id=referral["id"])
    as_peer = await peer.data(entities, reps=reps)
    as_stranger = await stranger.run(entities, reps=reps)

    assert node["node"] == {"__typename": "Referral", "id": referral["id"]}
    assert as_peer["_entities"] == [
        {"__typename": "Patient", "givenName": "Ada"},
        {"__typename": "Referral", "status": "REQUESTED"},
        {"__typename": "PeerProgram", "name": "Recovery Circle"},
    ]
    # A patient from another subgraph always resolves (so the gateway keeps that subgraph's
    # fields); what may not be disclosed is null with its reason, which for an organization
    # with no relationship to the patient is that PeerBridge holds no such record.
    assert as_stranger["data"]["_entities"] == [
        {"__typename": "Patient", "givenName": None},
        None,
        {"__typename": "PeerProgram", "name": "Recovery Circle"},
    ]
    assert sorted(error_codes(as_stranger)) == [
        ("_entities.0.givenName", "NOT_FOUND"),
        ("_entities.1", "NOT_FOUND"),
    ]


async def test_the_holding_clinic_sees_every_read_of_its_patient_in_the_audit_trail(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    await peer.data(
        "query($id: ID!) { patient(id: $id) { givenName fhir } }", id=str(network.patient.id)
    )

    trail = await clinic.data(
        "query($id: ID!) { auditEvents(patientId: $id) {"
        " action outcome operation organization { id } } }",
        id=str(network.patient.id),
    )

    assert {
        "action": "READ",
        "outcome": "SUCCESS",
        "operation": "readPatient",
        "organization": {"id": str(network.peer.id)},
    } in trail["auditEvents"]


async def test_fhir_fields_carry_each_records_resource(peer: GraphQL, network: Network) -> None:
    data = await peer.data(
        "query($p: ID!, $g: ID!) { patient(id: $p) { fhir }"
        " peerProgram(id: $g) { fhir organization { fhir } } viewer { organization { fhir } }"
        " peerSupporters { edges { node { fhir fhirPractitionerRole } } } }",
        p=str(network.patient.id),
        g=str(network.program.id),
    )

    assert data["patient"]["fhir"]["resourceType"] == "Patient"
    assert data["patient"]["fhir"]["id"] == str(network.patient.id)
    assert data["peerProgram"]["fhir"]["resourceType"] == "HealthcareService"
    assert data["peerProgram"]["organization"]["fhir"]["resourceType"] == "Organization"
    kinds = {
        (edge["node"]["fhir"]["resourceType"], edge["node"]["fhirPractitionerRole"]["resourceType"])
        for edge in data["peerSupporters"]["edges"]
    }
    assert kinds == {("Practitioner", "PractitionerRole")}


async def test_program_metrics_are_de_identified_with_small_cells_suppressed(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    await _refer(clinic, network, programId=str(network.program.id))

    data = await peer.data(
        'query($id: ID!) { programMetrics(programId: $id, from: "2020-01-01T00:00:00Z", '
        'to: "2100-01-01T00:00:00Z") { suppressionThreshold counts { name value suppressed } } }',
        id=str(network.program.id),
    )

    metrics = data["programMetrics"]
    assert metrics["suppressionThreshold"] == 11
    assert all(c["value"] in (0, None) for c in metrics["counts"])
    assert any(c["suppressed"] for c in metrics["counts"])


async def test_ftv1_traces_only_when_the_gateway_asks(peer: GraphQL) -> None:
    query = {"query": "{ viewer { clientId } peerPrograms { edges { node { name } } } }"}
    auth = {"authorization": f"Bearer {peer.token}"}

    traced = await peer.client.post(
        "/graphql", json=query, headers={**auth, "apollo-federation-include-trace": "ftv1"}
    )
    plain = await peer.client.post("/graphql", json=query, headers=auth)

    assert len(traced.json()["extensions"]["ftv1"]) > 20
    assert "extensions" not in plain.json()


async def test_a_setting_can_require_a_token_even_for_the_sdl(
    database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=database_url, data_dir=tmp_path, graphql_sdl_requires_token=True
    )
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client,
    ):
        response = await client.post("/graphql", json={"query": "{ _service { sdl } }"})

    assert response.status_code == 401
    assert error_codes(response.json()) == [("", "UNAUTHENTICATED")]
