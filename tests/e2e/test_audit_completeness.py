"""Every disclosure leaves its audit row (issue 9), through both doors: reads, lists, includes,
batches, writes, replays, writes that change nothing, refusals. Each request carries its own W3C
traceparent, so the rows it wrote are selected by its trace id and compared exactly: action,
outcome, operation, resource, patient, the consents it rested on and the purpose of use
(v3-ActReason: the consent's purposes, HOPERAT for an organization's own records, none for a
refusal). A request that disclosed nothing writes none."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fhir_flows import consent_form
from fhir_support import FHIR_JSON, entries
from graphql_support import token_for
from network import Network

from api.domain.outcomes import Instrument
from api.domain.programs import DeliveryMode
from api.domain.sessions import SessionFormat
from api.services import outcomes, referrals, sessions
from api.services.referrals import CreateReferral

Row = tuple[str, str, str, str, UUID | None, UUID | None, tuple[UUID, ...], str | None, str | None]
DATA_CLASS = "https://peerbridge.example.org/fhir/CodeSystem/data-class"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


class Door:
    """One organization's client on both doors; every call is its own trace."""

    def __init__(self, client: httpx.AsyncClient, pool: asyncpg.Pool, token: str) -> None:
        self.client, self.pool, self.token = client, pool, token
        self.trace = ""

    def _headers(self) -> dict[str, str]:
        self.trace = secrets.token_hex(16)
        return {
            "authorization": f"Bearer {self.token}",
            "traceparent": f"00-{self.trace}-{secrets.token_hex(8)}-01",
        }

    async def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self._headers()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def fhir(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {**self._headers(), "accept": FHIR_JSON, "content-type": FHIR_JSON}
        return await self.client.request(method, f"/fhir/{path}", json=body, headers=headers)

    async def rows(self) -> list[Row]:
        """The audit rows of the last call, in a stable order."""
        async with self.pool.acquire() as conn:
            found = await conn.fetch(
                "SELECT action, outcome, operation, resource_type, resource_id, patient_id, "
                "consent_ids, purpose, detail_code FROM audit_events WHERE trace_id = $1",
                self.trace,
            )
        return sorted(
            (
                (
                    r["action"],
                    r["outcome"],
                    r["operation"],
                    r["resource_type"],
                    r["resource_id"],
                    r["patient_id"],
                    tuple(sorted(r["consent_ids"])),
                    r["purpose"],
                    r["detail_code"],
                )
                for r in found
            ),
            key=str,
        )


async def _door(client: httpx.AsyncClient, pool: asyncpg.Pool, organization: Any) -> Door:
    return Door(client, pool, await token_for(client, pool, organization))


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Door:
    return await _door(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Door:
    return await _door(client, pool, network.peer)


@pytest.fixture
async def stranger(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Door:
    return await _door(client, pool, network.stranger)


def read(
    operation: str,
    resource_type: str,
    resource_id: UUID | None,
    patient: UUID,
    consents: tuple[UUID, ...] = (),
    purpose: str | None = "HOPERAT",
    detail: str | None = None,
) -> Row:
    return ("R", "success", operation, resource_type, resource_id, patient, consents, purpose,
            detail)


def refused(action: str, operation: str, resource_type: str, resource_id: UUID | None,
            patient: UUID, code: str) -> Row:
    return (action, "denied", operation, resource_type, resource_id, patient, (), None, code)


PATIENT = "query($id: ID!) { patient(id: $id) { givenName } }"
PATIENT_OUTCOMES = "query($id: ID!) { patient(id: $id) { outcomeMeasures { id } } }"


async def test_reads_lists_and_batches_name_the_consents_they_rest_on_and_their_purpose(
    network: Network, clinic: Door, peer: Door, stranger: Door
) -> None:
    pid = network.patient.id
    consent = (network.consent.id,)  # care_coordination -> CAREMGT
    measure = await outcomes.record_outcome_measure(
        network.uow(),
        network.as_clinic,
        outcomes.RecordOutcomeMeasure(pid, Instrument.PHQ9, (0,) * 9),
    )

    assert (await peer.graphql(PATIENT, id=str(pid)))["data"]["patient"]
    assert await peer.rows() == [read("readPatient", "Patient", pid, pid, consent, "CAREMGT")]
    assert (await clinic.graphql(PATIENT, id=str(pid)))["data"]["patient"]
    assert await clinic.rows() == [read("readPatient", "Patient", pid, pid)]

    listed = await peer.graphql(PATIENT_OUTCOMES, id=str(pid))
    assert listed["data"]["patient"]["outcomeMeasures"] == [{"id": str(measure.id)}]
    assert await peer.rows() == sorted(
        [
            read("readPatient", "Patient", pid, pid, consent, "CAREMGT"),
            read("readOutcomeMeasure", "QuestionnaireResponse", measure.id, pid, consent,
                 "CAREMGT"),
        ],
        key=str,
    )
    expected_outcome = [
        read("readOutcomeMeasure", "QuestionnaireResponse", measure.id, pid, consent, "CAREMGT")
    ]
    for search in (f"QuestionnaireResponse?patient={pid}", f"Observation?patient={pid}"):
        response = await peer.fhir("GET", search)
        assert response.status_code == 200 and entries(response.json()), response.text
        assert await peer.rows() == expected_outcome, search
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": f"Observation?patient={pid}"}}],
    }
    response = await peer.fhir("POST", "", batch)
    assert response.status_code == 200, response.text
    assert await peer.rows() == expected_outcome

    # A refusal: denied, no consent, no purpose (nothing was disclosed); an organization that
    # does not know the patient is told NOT_FOUND, and the row keeps what it was told.
    refusal = await stranger.graphql(PATIENT, id=str(pid))
    assert refusal["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await stranger.rows() == [refused("R", "readPatient", "Patient", pid, pid, "NOT_FOUND")]
    # Nothing of a patient disclosed, nothing recorded.
    assert (await peer.graphql("{ viewer { clientId } }"))["data"]["viewer"]
    assert await peer.rows() == []
    response = await stranger.fhir("GET", f"Observation?patient={pid}")
    assert response.status_code == 200 and not entries(response.json()), response.text
    assert await stranger.rows() == []


def _consent_citing(network: Network, form_id: str) -> dict[str, Any]:
    """A consent of the patient to the peer organization (treatment, demographics) citing the
    signed form."""
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                    "code": "patient-privacy",
                }
            ]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{network.patient.id}"},
        "policyRule": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes",
                    "code": "hipaa-auth",
                }
            ]
        },
        "sourceReference": {"reference": f"DocumentReference/{form_id}"},
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "IRCP",
                            }
                        ]
                    },
                    "reference": {"reference": f"Organization/{network.peer.id}"},
                }
            ],
            "purpose": [{"system": ACT_REASON, "code": "TREAT"}],
            "class": [{"system": DATA_CLASS, "code": "demographics"}],
        },
    }


async def test_a_signed_form_read_by_id_list_or_include_names_the_consent_citing_it(
    network: Network, clinic: Door, peer: Door
) -> None:
    pid = network.patient.id
    response = await clinic.fhir("POST", "DocumentReference", consent_form(f"Patient/{pid}"))
    assert response.status_code == 201, response.text
    form = UUID(response.json()["id"])
    assert await clinic.rows() == [
        ("C", "success", "recordConsentForm", "DocumentReference", form, pid, (), "HOPERAT", None)
    ]
    response = await clinic.fhir("POST", "Consent", _consent_citing(network, str(form)))
    assert response.status_code == 201, response.text
    citing = UUID(response.json()["id"])

    by_form = read("readConsentForm", "DocumentReference", form, pid, (citing,), "TREAT")
    assert (await peer.fhir("GET", f"DocumentReference/{form}")).status_code == 200
    assert await peer.rows() == [by_form]
    assert (await peer.fhir("GET", f"DocumentReference?patient={pid}")).status_code == 200
    assert await peer.rows() == [
        read("listConsentForms", "DocumentReference", form, pid, (citing,), "TREAT")
    ]
    response = await peer.fhir(
        "GET",
        f"Consent?source-reference=DocumentReference/{form}&_include=Consent:source-reference",
    )
    assert [r["id"] for r in entries(response.json())] == [str(citing), str(form)]
    assert await peer.rows() == sorted(
        [read("listConsents", "Consent", citing, pid, (citing,), "TREAT"), by_form], key=str
    )
    # The AuditEvent says the purpose of use as v3-ActReason codings.
    response = await peer.fhir("GET", f"AuditEvent?patient={pid}")
    assert response.status_code == 200, response.text
    purposes = [
        [(coding["system"], coding["code"]) for coding in concept["coding"]]
        for event in entries(response.json())
        for concept in event["purposeOfEvent"]
    ]
    assert [(ACT_REASON, "TREAT")] in purposes


ASSIGN = """mutation($input: AssignSupporterInput!) { assignSupporter(input: $input) { id } }"""
ACCEPT = """mutation($input: ReferralTransitionInput!) { acceptReferral(input: $input) { id } }"""
CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }"""
REVOKE = """mutation($input: RevokeConsentInput!) { revokeConsent(input: $input) { id } }"""
ATTEND = """mutation($input: RecordAttendanceInput!) { recordAttendance(input: $input) { id } }"""
GRANT = """mutation($input: GrantConsentInput!) { grantConsent(input: $input) { id } }"""


async def test_writes_replays_and_writes_that_change_nothing_are_all_in_the_trail(
    network: Network, clinic: Door, peer: Door, stranger: Door
) -> None:
    pid = network.patient.id
    consent = (network.consent.id,)
    sent = {
        "patientId": str(pid),
        "performerOrganizationId": str(network.peer.id),
        "idempotencyKey": secrets.token_hex(8),
    }
    first = await clinic.graphql(CREATE, input=sent)
    rid = UUID(first["data"]["createReferral"]["id"])
    # Sent under the patient's consent to the peer organization (care coordination).
    assert await clinic.rows() == [
        ("C", "success", "createReferral", "Referral", rid, pid, consent, "CAREMGT", None)
    ]
    assert (await clinic.graphql(CREATE, input=sent))["data"]["createReferral"]["id"] == str(rid)
    assert await clinic.rows() == [
        read("createReferral", "Referral", rid, pid, detail="IDEMPOTENT_REPLAY")
    ]

    # Another organization's attempt is recorded as the action it attempted.
    refusal = await stranger.graphql(ACCEPT, input={"referralId": str(rid)})
    assert refusal["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert await stranger.rows() == [
        refused("U", "acceptReferral", "Referral", rid, pid, "NOT_FOUND")
    ]
    task = {"resourceType": "Task", "id": str(rid), "status": "accepted", "intent": "order"}
    response = await stranger.fhir("PUT", f"Task/{rid}", task)
    assert response.status_code == 404, response.text
    assert await stranger.rows() == [
        refused("U", "updateTask", "Referral", rid, pid, "NOT_FOUND")
    ]

    accept = {"referralId": str(rid), "idempotencyKey": secrets.token_hex(8)}
    assert (await peer.graphql(ACCEPT, input=accept))["data"]["acceptReferral"]
    assert await peer.rows() == [
        ("U", "success", "acceptReferral", "Referral", rid, pid, consent, "CAREMGT", None)
    ]
    # Its replay shows the referral again, under the same consent.
    assert (await peer.graphql(ACCEPT, input=accept))["data"]["acceptReferral"]
    assert await peer.rows() == [
        read("transitionReferral", "Referral", rid, pid, consent, "CAREMGT", "IDEMPOTENT_REPLAY")
    ]
    again = await peer.graphql(ACCEPT, input={"referralId": str(rid)})
    assert again["errors"][0]["extensions"]["code"] == "INVALID_TRANSITION"
    assert await peer.rows() == []  # refused before anything was shown

    assign = {"referralId": str(rid), "supporterId": str(network.supporter.id)}
    assert (await peer.graphql(ASSIGN, input=assign))["data"]["assignSupporter"]
    assert await peer.rows() == [
        ("U", "success", "assignSupporter", "Referral", rid, pid, consent, "CAREMGT", None)
    ]
    assert (await peer.graphql(ASSIGN, input=assign))["data"]["assignSupporter"]
    assert await peer.rows() == [
        read("assignSupporter", "Referral", rid, pid, consent, "CAREMGT", "NO_CHANGE")
    ]

    start = datetime.now(UTC) - timedelta(hours=2)
    session = await sessions.record_session(
        network.uow(),
        network.as_peer,
        sessions.RecordSession(
            program_id=network.program.id,
            format=SessionFormat.GROUP,
            delivery_mode=DeliveryMode.IN_PERSON,
            starts_at=start,
            ends_at=start + timedelta(minutes=60),
        ),
    )
    attendance = {"sessionId": str(session.id), "patientId": str(pid), "status": "NO_SHOW"}
    recorded = await peer.graphql(ATTEND, input=attendance)
    aid = UUID(recorded["data"]["recordAttendance"]["id"])
    assert await peer.rows() == [
        ("C", "success", "recordAttendance", "Encounter", aid, pid, (), "HOPERAT", None)
    ]
    # A second record for the session and participant corrects the first: an update.
    corrected = await peer.graphql(ATTEND, input={**attendance, "status": "ATTENDED"})
    assert corrected["data"]["recordAttendance"]["id"] == str(aid)
    assert await peer.rows() == [
        ("U", "success", "recordAttendance", "Encounter", aid, pid, (), "HOPERAT", None)
    ]

    grant = {
        "patientId": str(pid),
        "recipientOrganizationId": str(network.stranger.id),
        "purposes": ["TREATMENT"],
        "dataClasses": ["DEMOGRAPHICS"],
    }
    granted = UUID((await clinic.graphql(GRANT, input=grant))["data"]["grantConsent"]["id"])
    assert await clinic.rows() == [
        ("C", "success", "grantConsent", "Consent", granted, pid, (), "HOPERAT", None)
    ]
    assert (await clinic.graphql(GRANT, input=grant))["data"]["grantConsent"]["id"] == str(granted)
    assert await clinic.rows() == [
        read("grantConsent", "Consent", granted, pid, detail="ALREADY_GRANTED")
    ]
    revoke = {"consentId": str(granted), "reason": "moved away"}
    assert (await clinic.graphql(REVOKE, input=revoke))["data"]["revokeConsent"]
    assert await clinic.rows() == [
        ("U", "success", "revokeConsent", "Consent", granted, pid, (), "HOPERAT", None)
    ]
    assert (await clinic.graphql(REVOKE, input=revoke))["data"]["revokeConsent"]
    assert await clinic.rows() == [
        read("revokeConsent", "Consent", granted, pid, detail="NO_CHANGE")
    ]


async def test_a_referral_created_through_the_service_is_read_under_its_consent(
    network: Network, peer: Door
) -> None:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    rid = view.referral.id
    response = await peer.fhir("GET", f"Task/{rid}")
    assert response.status_code == 200, response.text
    assert await peer.rows() == [
        read("readReferral", "Referral", rid, network.patient.id, (network.consent.id,),
             "CAREMGT")
    ]
