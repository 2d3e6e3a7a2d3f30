"""Whole days through GraphQL on the running app and real PostgreSQL: a clinic sends and follows
consented referrals; a peer organization works its inbox from intake to completion and escalates
a participant back to a clinic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from graphql_support import GraphQL, error_codes
from network import Network

from api.domain.procedures import HCPCS_SYSTEM, ProcedureStatus
from api.domain.referrals import Coding, Transition
from api.services import procedures, referrals

REGISTER = """
mutation Register($input: RegisterPatientInput!) {
  registerPatient(input: $input) { id givenName managingOrganization { name } }
}"""
GRANT = """
mutation Grant($input: GrantConsentInput!) {
  grantConsent(input: $input) { id status dataClasses recipient { id } }
}"""
CREATE = """
mutation Create($input: CreateReferralInput!) {
  createReferral(input: $input) {
    id version status role priority direction reasonText
    consent { id } program { name } patient { givenName }
  }
}"""
FOLLOW = """
query Follow($id: ID!) {
  referral(id: $id) {
    status version businessStatus { code display }
    assignedSupporter { displayName }
    history { fromStatus toStatus transition reason actor { organization { name } } }
  }
}"""
INBOX = """
query Inbox($first: Int) {
  referrals(filter: {box: INBOX, status: [REQUESTED]}, first: $first) {
    edges { cursor node {
      id version priority status reasonText patient { givenName } program { name }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
MOVE = """
mutation Move($input: ReferralTransitionInput!) {
  %s(input: $input) { id status version statusReason allowedTransitions }
}"""
ASSIGN = """
mutation Assign($input: AssignSupporterInput!) {
  assignSupporter(input: $input) {
    id version assignedSupporter { displayName hasValidCertification }
  }
}"""
SESSION = """
mutation Session($input: RecordSessionInput!) {
  recordSession(input: $input) { id minutes facilitators { displayName } program { name } }
}"""
ATTEND = """
mutation Attend($input: RecordAttendanceInput!) {
  recordAttendance(input: $input) {
    id status billing { units hcpcsCode modifiers } session { id } referral { id }
  }
}"""
MEASURE = """
mutation Measure($input: RecordOutcomeMeasureInput!) {
  recordOutcomeMeasure(input: $input) { id instrument total safetySignal code { system code } }
}"""
ESCALATE = """
mutation Escalate($input: EscalateReferralInput!) {
  escalateReferral(input: $input) {
    id direction priority status requester { id } performer { id } escalatedFrom { id }
    reasonText fhir
  }
}"""


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.peer)


async def _move(gql: GraphQL, mutation: str, referral: dict[str, Any], **extra: Any) -> Any:
    data = await gql.data(
        MOVE % mutation,
        input={"referralId": referral["id"], "expectedVersion": referral["version"], **extra},
    )
    return data[mutation]


async def _new_consented_patient(clinic: GraphQL, network: Network, given: str) -> str:
    patient = (
        await clinic.data(
            REGISTER,
            input={
                "givenName": given,
                "familyName": "Example",
                "identifiers": [{"system": "urn:test:mrn", "value": f"MRN-{given}"}],
                "idempotencyKey": f"register-{given}",
            },
        )
    )["registerPatient"]
    await clinic.data(
        GRANT,
        input={
            "patientId": patient["id"],
            "recipientOrganizationId": str(network.peer.id),
            "purposes": ["CARE_COORDINATION"],
            "dataClasses": ["DEMOGRAPHICS", "REFERRAL", "SESSIONS", "OUTCOMES"],
        },
    )
    return str(patient["id"])


async def test_clinic_creates_a_consented_referral_and_follows_it(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    patient = (
        await clinic.data(
            REGISTER, input={"givenName": "Cleo", "familyName": "Example", "gender": "FEMALE"}
        )
    )["registerPatient"]
    assert patient["managingOrganization"]["name"] == network.clinic.name
    referral_input = {
        "patientId": patient["id"],
        "performerOrganizationId": str(network.peer.id),
        "programId": str(network.program.id),
        "priority": "URGENT",
        "reasonText": "isolated since moving",
        "reasonCodes": [{"system": "http://snomed.info/sct", "code": "461481000124109"}],
    }

    refused = await clinic.run(CREATE, input=referral_input)
    assert error_codes(refused) == [("createReferral", "CONSENT_REQUIRED")]
    assert refused["data"] == {"createReferral": None}

    consent = (
        await clinic.data(
            GRANT,
            input={
                "patientId": patient["id"],
                "recipientOrganizationId": str(network.peer.id),
                "purposes": ["TREATMENT"],
                "dataClasses": ["DEMOGRAPHICS", "REFERRAL"],
                "sourceReference": "DocumentReference/signed-form-1",
            },
        )
    )["grantConsent"]
    assert consent["status"] == "ACTIVE"
    created = (await clinic.data(CREATE, input=referral_input))["createReferral"]
    assert created["status"] == "REQUESTED"
    assert created["role"] == "REQUESTER"
    assert created["direction"] == "CLINIC_TO_PEER"
    assert created["consent"] == {"id": consent["id"]}
    assert created["patient"] == {"givenName": "Cleo"}

    await _move(peer, "acceptReferral", created)
    followed = (await clinic.data(FOLLOW, id=created["id"]))["referral"]
    assert followed["status"] == "ACCEPTED"
    assert followed["businessStatus"] == {"code": "3.0", "display": "Service Request Accepted"}
    assert [(h["fromStatus"], h["toStatus"]) for h in followed["history"]] == [
        (None, "REQUESTED"),
        ("REQUESTED", "ACCEPTED"),
    ]
    assert followed["history"][1]["actor"]["organization"]["name"] == network.peer.name

    cancelled = await _move(clinic, "cancelReferral", created | followed, reason="moved away")
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["allowedTransitions"] == []


async def test_a_peer_organization_works_its_whole_day(
    clinic: GraphQL, peer: GraphQL, network: Network
) -> None:
    # Morning: two referrals arrive from the clinic.
    second_patient = await _new_consented_patient(clinic, network, "Dee")
    sent = []
    for patient_id, reason in ((str(network.patient.id), "low mood"), (second_patient, "grief")):
        sent.append(
            (
                await clinic.data(
                    CREATE,
                    input={
                        "patientId": patient_id,
                        "performerOrganizationId": str(network.peer.id),
                        "programId": str(network.program.id),
                        "reasonText": reason,
                    },
                )
            )["createReferral"]
        )

    inbox = (await peer.data(INBOX, first=50))["referrals"]
    nodes = [edge["node"] for edge in inbox["edges"]]
    assert [n["id"] for n in nodes] == [r["id"] for r in reversed(sent)]
    assert {n["patient"]["givenName"] for n in nodes} == {"Ada", "Dee"}
    assert {n["program"]["name"] for n in nodes} == {"Recovery Circle"}
    assert inbox["pageInfo"]["hasNextPage"] is False

    # Intake: accept the first, assign a certified supporter, start.
    referral = next(n for n in nodes if n["id"] == sent[0]["id"])
    accepted = await _move(peer, "acceptReferral", referral)
    assert accepted["allowedTransitions"] == ["START"]
    expired = await peer.run(
        ASSIGN,
        input={"referralId": referral["id"], "supporterId": str(network.expired_supporter.id)},
    )
    assert error_codes(expired) == [("assignSupporter", "SUPPORTER_UNAVAILABLE")]
    assigned = (
        await peer.data(
            ASSIGN,
            input={
                "referralId": referral["id"],
                "supporterId": str(network.supporter.id),
                "expectedVersion": accepted["version"],
            },
        )
    )["assignSupporter"]
    assert assigned["assignedSupporter"] == {
        "displayName": "Sam Rivera",
        "hasValidCertification": True,
    }
    started = await _move(peer, "startReferral", assigned)
    assert started["status"] == "IN_PROGRESS"

    # Afternoon: a group session, attendance with billing, a PHQ-9 with a safety signal.
    now = datetime.now(UTC).replace(microsecond=0)
    session = (
        await peer.data(
            SESSION,
            input={
                "programId": str(network.program.id),
                "format": "GROUP",
                "deliveryMode": "IN_PERSON",
                "startsAt": (now - timedelta(hours=2)).isoformat(),
                "endsAt": (now - timedelta(hours=1)).isoformat(),
                "facilitatorIds": [str(network.supporter.id)],
                "idempotencyKey": "session-1",
            },
        )
    )["recordSession"]
    assert session["minutes"] == 60
    assert session["facilitators"] == [{"displayName": "Sam Rivera"}]
    attendance = (
        await peer.data(
            ATTEND,
            input={
                "sessionId": session["id"],
                "patientId": str(network.patient.id),
                "referralId": referral["id"],
                "status": "ATTENDED",
            },
        )
    )["recordAttendance"]
    assert attendance["billing"] == {"units": 4, "hcpcsCode": "H0038", "modifiers": ["HQ"]}
    measure = (
        await peer.data(
            MEASURE,
            input={
                "patientId": str(network.patient.id),
                "instrument": "PHQ9",
                "itemAnswers": [2, 2, 1, 1, 0, 1, 1, 0, 1],
                "referralId": referral["id"],
            },
        )
    )["recordOutcomeMeasure"]
    assert measure["total"] == 9
    assert measure["safetySignal"] is True
    assert measure["code"] == {"system": "http://loinc.org", "code": "44249-1"}

    # Evening: complete the first referral; escalate the second participant to a clinic.
    completed = await _move(peer, "completeReferral", started)
    assert completed["status"] == "COMPLETED"
    second = next(n for n in nodes if n["id"] == sent[1]["id"])
    accepted_second = await _move(peer, "acceptReferral", second)
    await clinic.data(
        GRANT,
        input={
            "patientId": second_patient,
            "recipientOrganizationId": str(network.clinic.id),
            "purposes": ["TREATMENT"],
            "dataClasses": ["DEMOGRAPHICS", "REFERRAL"],
        },
    )
    escalate = {
        "referralId": accepted_second["id"],
        "clinicOrganizationId": str(network.clinic.id),
        "priority": "STAT",
    }
    # What the escalation says is kept as written, or refused: never trimmed or merged.
    for refused in ({"reasonText": " \n "}, {"sharedDataClasses": ["REFERRAL", "REFERRAL"]}):
        body = await peer.run(ESCALATE, input={**escalate, **refused})
        assert error_codes(body) == [("escalateReferral", "INVALID_INPUT")], refused
    reason = "expressed thoughts of self-harm\n(said twice)"
    escalation = (
        await peer.data(
            ESCALATE,
            input={**escalate, "reasonText": reason, "idempotencyKey": "escalate-dee"},
        )
    )["escalateReferral"]
    assert escalation["reasonText"] == reason
    assert {"text": reason} in escalation["fhir"]["reasonCode"]
    assert escalation["direction"] == "PEER_TO_CLINIC"
    assert escalation["priority"] == "STAT"
    assert escalation["requester"] == {"id": str(network.peer.id)}
    assert escalation["performer"] == {"id": str(network.clinic.id)}
    assert escalation["escalatedFrom"] == {"id": accepted_second["id"]}

    # The clinic sees the escalation in its own inbox, with the participant.
    clinic_inbox = (await clinic.data(INBOX, first=10))["referrals"]["edges"]
    assert [(e["node"]["id"], e["node"]["patient"]["givenName"]) for e in clinic_inbox] == [
        (escalation["id"], "Dee")
    ]
    # And the peer organization's participant view shows the day's records.
    day = await peer.data(
        """query Participant($id: ID!) { patient(id: $id) {
            attendance { status billing { units } }
            outcomeMeasures { instrument total safetySignal }
            referrals { edges { node { status } } } } }""",
        id=str(network.patient.id),
    )
    assert day["patient"]["attendance"] == [{"status": "ATTENDED", "billing": {"units": 4}}]
    assert day["patient"]["outcomeMeasures"] == [
        {"instrument": "PHQ9", "total": 9, "safetySignal": True}
    ]
    assert day["patient"]["referrals"]["edges"] == [{"node": {"status": "COMPLETED"}}]


async def test_the_fhir_task_through_graphql_lists_the_delivered_procedures_as_output(
    network: Network, clinic: GraphQL
) -> None:
    view = await referrals.create_referral(
        network.uow(), network.as_clinic,
        referrals.CreateReferral(patient_id=network.patient.id,
                                 performer_organization_id=network.peer.id),
    )
    for move in (Transition.ACCEPT, Transition.START, Transition.COMPLETE):
        await referrals.transition_referral(network.uow(), network.as_peer, view.referral.id, move)
    delivered = await procedures.record_procedure(
        network.uow(), network.as_peer,
        procedures.RecordProcedure(
            referral_id=view.referral.id, status=ProcedureStatus.COMPLETED,
            codes=(Coding(HCPCS_SYSTEM, "H0038"),),
            units=4,
        ),
    )
    data = await clinic.data(
        "query($id: ID!) { referral(id: $id) { fhirTask } }", id=str(view.referral.id)
    )
    task = data["referral"]["fhirTask"]
    assert task["resourceType"] == "Task" and task["status"] == "completed"
    references = [o["valueReference"]["reference"] for o in task.get("output", [])]
    assert f"Procedure/{delivered.procedure.id}" in references
