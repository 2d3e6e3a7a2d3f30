"""Through both doors: ending all sharing of a patient with an organization (GraphQL
`revokeConsents`; FHIR, a transaction Bundle revoking each consent), a repeated grant, and an
idempotency key still in use (GraphQL IDEMPOTENCY_KEY_IN_USE, FHIR 409)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fhir_flows import consent_form
from fhir_support import Fhir, entries
from graphql_support import GraphQL, error_codes
from network import Network

from api.db import idempotency as idempotency_rows
from api.db.idempotency import PostgresIdempotencyRepository
from api.domain.consents import DataClass, Purpose
from api.services import consents

REVOKE_ALL = """
mutation RevokeAll($input: RevokeConsentsInput!) {
  revokeConsents(input: $input) { id status revocationReason }
}"""
GRANT = """
mutation Grant($input: GrantConsentInput!) { grantConsent(input: $input) { id status } }"""
PATIENT = "query($id: ID!) { patient(id: $id) { givenName } }"


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.peer)


@pytest.fixture
async def stranger(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.stranger)


async def test_revoke_consents_ends_all_sharing_with_the_organization(
    network: Network, clinic: GraphQL, peer: GraphQL, stranger: GraphQL
) -> None:
    second = await consents.grant_consent(
        network.uow(),
        network.as_clinic,
        consents.GrantConsent(
            patient_id=network.patient.id,
            recipient_organization_id=network.peer.id,
            purposes=frozenset({Purpose.TREATMENT}),
            data_classes=frozenset({DataClass.DEMOGRAPHICS}),
        ),
    )
    sharing = {
        "patientId": str(network.patient.id),
        "recipientOrganizationId": str(network.peer.id),
    }
    refused = await stranger.run(REVOKE_ALL, input=sharing)
    # No relationship with the patient: to the stranger the patient does not exist.
    assert error_codes(refused) == [("revokeConsents", "NOT_FOUND")]
    assert (await peer.data(PATIENT, id=str(network.patient.id)))["patient"]

    revoked = (await clinic.data(REVOKE_ALL, input={**sharing, "reason": "moved away"}))[
        "revokeConsents"
    ]
    assert {c["id"] for c in revoked} == {str(network.consent.id), str(second.id)}
    assert all(c["status"] == "REVOKED" and c["revocationReason"] == "moved away" for c in revoked)
    after = await peer.run(PATIENT, id=str(network.patient.id))
    assert error_codes(after) == [("patient", "CONSENT_REVOKED")]
    assert (await clinic.data(REVOKE_ALL, input=sharing))["revokeConsents"] == []


async def test_revoke_consents_refuses_a_malformed_id_by_name(clinic: GraphQL) -> None:
    body = await clinic.run(
        REVOKE_ALL, input={"patientId": "not-an-id", "recipientOrganizationId": "x"}
    )
    assert error_codes(body) == [("revokeConsents", "INVALID_INPUT")]
    assert body["errors"][0]["extensions"]["details"][0]["field"] == "input.patientId"


async def test_a_grant_repeating_an_active_consent_answers_with_that_consent(
    network: Network, clinic: GraphQL
) -> None:
    grant = {
        "patientId": str(network.patient.id),
        "recipientOrganizationId": str(network.stranger.id),
        "purposes": ["TREATMENT"],
        "dataClasses": ["DEMOGRAPHICS", "REFERRAL"],
    }
    first = (await clinic.data(GRANT, input=grant))["grantConsent"]
    again = (await clinic.data(GRANT, input=grant))["grantConsent"]
    assert again == first


# --- a key still in use ------------------------------------------------------------------------


async def client_id_of(door: GraphQL) -> str:
    return str((await door.data("{ viewer { clientId } }"))["viewer"]["clientId"])


@pytest.fixture
async def key_held_elsewhere(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    """Reserve (organization, client, key) in a transaction that stays open, as a first request
    still running would; callers give up waiting after 50 ms."""
    monkeypatch.setattr(idempotency_rows, "WAIT_FOR_FIRST_REQUEST_MS", 50)
    async with pool.acquire() as conn, conn.transaction():

        async def hold(organization_id: UUID, client_id: str, key: str) -> None:
            await PostgresIdempotencyRepository(conn).reserve(organization_id, client_id, key)

        yield hold


async def test_graphql_says_the_key_is_in_use_while_its_first_request_runs(
    network: Network, clinic: GraphQL, key_held_elsewhere: Any
) -> None:
    await key_held_elsewhere(network.clinic.id, await client_id_of(clinic), "order-7")
    body = await clinic.run(
        "mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }",
        input={
            "patientId": str(network.patient.id),
            "performerOrganizationId": str(network.peer.id),
            "idempotencyKey": "order-7",
        },
    )
    assert error_codes(body) == [("createReferral", "IDEMPOTENCY_KEY_IN_USE")]
    assert "retry" in body["errors"][0]["message"]


async def test_fhir_answers_409_while_the_key_s_first_request_runs(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    clinic: GraphQL,
    key_held_elsewhere: Any,
) -> None:
    fhir = Fhir(client, clinic.token)
    await key_held_elsewhere(network.clinic.id, await client_id_of(clinic), "form-1")
    response = await fhir.request(
        "POST",
        "DocumentReference",
        consent_form(f"Patient/{network.patient.id}"),
        {"idempotency-key": "form-1"},
    )
    assert response.status_code == 409
    (issue,) = response.json()["issue"]
    assert issue["code"] == "conflict"
    assert issue["details"]["coding"][0]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    assert "still in progress" in issue["details"]["text"]


# --- FHIR: revoking each consent in one transaction --------------------------------------------


async def test_fhir_revokes_all_sharing_in_one_transaction_bundle(
    client: httpx.AsyncClient, network: Network, clinic: GraphQL, peer: GraphQL
) -> None:
    fhir = Fhir(client, clinic.token)
    active = entries(
        await fhir.ok("GET", f"Consent?patient=Patient/{network.patient.id}&status=active")
    )
    recipient = f"Organization/{network.peer.id}"
    sharing = [c for c in active if recipient in _actors(c)]
    assert sharing
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**consent, "status": "inactive"},
                "request": {"method": "PUT", "url": f"Consent/{consent['id']}"},
            }
            for consent in sharing
        ],
    }
    done = await fhir.ok("POST", "", bundle)
    assert [e["response"]["status"][:3] for e in done["entry"]] == ["200"] * len(sharing)
    after = await peer.run(PATIENT, id=str(network.patient.id))
    assert error_codes(after) == [("patient", "CONSENT_REVOKED")]


def _actors(consent: dict[str, Any]) -> list[str]:
    return [actor["reference"]["reference"] for actor in consent["provision"]["actor"]]
