"""The signed consent form (DocumentReference), attendance Encounters and the audit trail by id,
the search parameters of the Coordination Platform floor, and a CapabilityStatement that states
exactly what the routes serve."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_flows import SIGNED_PDF, consent_form
from fhir_support import Fhir, entries, issue_expressions
from network import Network, register_patient

from api.domain.consents import DataClass, Purpose
from api.domain.documents import MAX_CONTENT_BYTES
from api.domain.outcomes import Instrument
from api.domain.programs import DeliveryMode
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.services import consents, outcomes, referrals, sessions
from api.services.referrals import CreateReferral

DATA_CLASS = "https://peerbridge.example.org/fhir/CodeSystem/data-class"


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


@pytest.fixture
async def stranger(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.stranger)


def _consent(network: Network, source: dict[str, Any]) -> dict[str, Any]:
    """A consent of the network's patient to the peer organization, citing `source`."""
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
        **source,
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
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}
            ],
            "class": [{"system": DATA_CLASS, "code": "demographics"}],
        },
    }


async def test_the_holder_records_a_signed_form_that_a_consent_cites_and_its_parties_read(
    network: Network, clinic: Fhir, peer: Fhir, stranger: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    response = await clinic.request("POST", "DocumentReference", consent_form(patient, inline=True))
    assert response.status_code == 201, response.text
    form = response.json()
    attachment = form["content"][0]["attachment"]
    assert base64.b64decode(attachment["data"]) == SIGNED_PDF
    assert attachment["size"] == len(SIGNED_PDF) and attachment["hash"]
    assert form["custodian"] == {"reference": f"Organization/{network.clinic.id}"}
    # Before any consent cites it, only the holder of the record reads it.
    assert (await peer.get(f"DocumentReference/{form['id']}")).status_code == 403

    cites = {"sourceReference": {"reference": f"DocumentReference/{form['id']}"}}
    consent = await clinic.ok("POST", "Consent", _consent(network, cites))
    assert consent["sourceReference"] == cites["sourceReference"]

    read = await peer.ok("GET", f"DocumentReference/{form['id']}")
    assert read["content"] == form["content"]
    bundle = await peer.ok(
        "GET",
        f"Consent?source-reference=DocumentReference/{form['id']}"
        "&_include=Consent:source-reference",
    )
    assert [(r["resourceType"], r["id"]) for r in entries(bundle)] == [
        ("Consent", consent["id"]),
        ("DocumentReference", form["id"]),
    ]
    searched = await peer.ok("GET", f"DocumentReference?patient={patient}")
    assert [r["id"] for r in entries(searched)] == [form["id"]]
    stamp = form["meta"]["lastUpdated"].replace("+", "%2B")
    later = await clinic.ok("GET", f"DocumentReference?patient={patient}&_lastUpdated=gt{stamp}")
    assert "entry" not in later
    # The stranger has no relationship with the patient: neither form nor patient exist for it.
    assert (await stranger.get(f"DocumentReference/{form['id']}")).status_code == 404
    assert (await stranger.get(f"DocumentReference?patient={patient}")).status_code == 404
    none = await stranger.ok("GET", f"Consent?source-reference=DocumentReference/{form['id']}")
    assert "entry" not in none


async def test_a_revoked_consent_hides_the_signed_form_from_the_recipient_on_the_next_request(
    network: Network, clinic: Fhir, peer: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    form = await clinic.ok("POST", "DocumentReference", consent_form(patient, inline=True))
    cites = {"sourceReference": {"reference": f"DocumentReference/{form['id']}"}}
    consent = await clinic.ok("POST", "Consent", _consent(network, cites))
    assert (await peer.ok("GET", f"DocumentReference/{form['id']}"))["content"]

    revoked = await clinic.ok(
        "PUT",
        f"Consent/{consent['id']}",
        {**consent, "status": "inactive"},
        **{"if-match": 'W/"1"'},
    )
    assert revoked["status"] == "inactive"

    for path in (f"DocumentReference/{form['id']}", f"DocumentReference?patient={patient}"):
        refused = await peer.get(path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["issue"][0]["details"]["coding"][0]["code"] == "CONSENT_REVOKED"
    bundle = await peer.ok(
        "GET",
        f"Consent?source-reference=DocumentReference/{form['id']}"
        "&_include=Consent:source-reference",
    )
    assert [r["resourceType"] for r in entries(bundle)] == ["Consent"]
    assert attachment_data(form) not in str(peer.seen[-1])
    assert (await clinic.ok("GET", f"DocumentReference/{form['id']}"))["id"] == form["id"]


def attachment_data(form: dict[str, Any]) -> str:
    data: str = form["content"][0]["attachment"]["data"]
    return data


async def test_only_the_organization_holding_the_record_keeps_its_consent_forms(
    network: Network, peer: Fhir
) -> None:
    response = await peer.request(
        "POST", "DocumentReference", consent_form(f"Patient/{network.patient.id}")
    )
    assert response.status_code == 403, response.text
    assert response.json()["issue"][0]["code"] == "forbidden"


async def test_an_oversized_or_malformed_consent_form_is_refused_with_the_element_named(
    network: Network, clinic: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    big = consent_form(patient, inline=True, data=b"x" * (MAX_CONTENT_BYTES + 1))
    response = await clinic.request("POST", "DocumentReference", big)
    assert response.status_code == 413, response.text
    (issue,) = response.json()["issue"]
    assert issue["code"] == "too-long"
    assert issue["expression"] == ["DocumentReference.content[0].attachment.data"]
    assert str(MAX_CONTENT_BYTES) in issue["details"]["text"]

    def attachment(**fields: Any) -> dict[str, Any]:
        form = consent_form(patient)
        form["content"][0]["attachment"] = fields
        return form

    url = "https://clinic.example.org/forms/1.pdf"
    data = base64.b64encode(SIGNED_PDF).decode()
    cases: list[tuple[dict[str, Any], int, list[str]]] = [
        (
            attachment(contentType="application/zip", url=url),
            422,
            ["DocumentReference.content[0].attachment.contentType"],
        ),
        (
            attachment(contentType="application/pdf", url=url, data=data),
            422,
            ["DocumentReference.content[0].attachment.url"],
        ),
        (
            attachment(contentType="application/pdf", data="not base64!"),
            400,
            ["DocumentReference.content[0].attachment.data"],
        ),
        (
            attachment(contentType="application/pdf", data=data, size=3),
            422,
            ["DocumentReference.content[0].attachment.size"],
        ),
        ({**consent_form(patient), "status": "superseded"}, 422, ["DocumentReference.status"]),
        ({**consent_form(patient), "status": "bogus"}, 400, ["DocumentReference.status"]),
        (
            {**consent_form(patient), "content": consent_form(patient)["content"] * 2},
            422,
            ["DocumentReference.content"],
        ),
        (
            {**consent_form(patient), "subject": {"reference": f"Group/{network.patient.id}"}},
            422,
            ["DocumentReference.subject"],
        ),
    ]
    for body, status, expressions in cases:
        response = await clinic.request("POST", "DocumentReference", body)
        assert response.status_code == status, (body, response.text)
        assert issue_expressions(response.json()) == expressions, response.text
    assert "entry" not in await clinic.ok("GET", f"DocumentReference?patient={patient}")


async def test_a_consent_cites_only_a_form_of_its_own_patient(
    network: Network, clinic: Fhir
) -> None:
    other = await register_patient(network)
    form = await clinic.ok("POST", "DocumentReference", consent_form(f"Patient/{other.id}"))
    cites = {"sourceReference": {"reference": f"DocumentReference/{form['id']}"}}
    response = await clinic.request("POST", "Consent", _consent(network, cites))
    assert response.status_code == 422, response.text
    assert issue_expressions(response.json()) == ["Consent.sourceReference"]
    linked = await clinic.ok(
        "POST", "Consent", _consent(network, {"sourceAttachment": {"url": "https://x.example/f"}})
    )
    assert linked["sourceAttachment"] == {"url": "https://x.example/f"}


async def _attendance(network: Network) -> str:
    """A referral clinic → peer organization and one attended session; the attendance id."""
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    start = datetime.now(UTC) - timedelta(hours=3)
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
    attendance = await sessions.record_attendance(
        network.uow(),
        network.as_peer,
        sessions.RecordAttendance(
            session_id=session.id,
            patient_id=network.patient.id,
            status=AttendanceStatus.ATTENDED,
            referral_id=view.referral.id,
        ),
    )
    return str(attendance.id)


async def test_an_attendance_encounter_reads_by_id_under_the_consent_rule(
    network: Network, peer: Fhir, clinic: Fhir, stranger: Fhir
) -> None:
    attendance_id = await _attendance(network)
    encounter = await peer.ok("GET", f"Encounter/{attendance_id}")
    assert encounter["subject"] == {"reference": f"Patient/{network.patient.id}"}
    assert encounter["partOf"]["reference"].startswith("Encounter/")
    assert (await peer.ok("GET", encounter["partOf"]["reference"]))["serviceType"]
    assert (await stranger.get(f"Encounter/{attendance_id}")).status_code == 404
    refused = await clinic.get(f"Encounter/{attendance_id}")
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["details"]["coding"][0]["code"] == "CONSENT_REQUIRED"

    back = await consents.grant_consent(
        network.uow(),
        network.as_clinic,
        consents.GrantConsent(
            patient_id=network.patient.id,
            recipient_organization_id=network.clinic.id,
            purposes=frozenset({Purpose.TREATMENT}),
            data_classes=frozenset({DataClass.SESSIONS}),
        ),
    )
    assert (await clinic.ok("GET", f"Encounter/{attendance_id}"))["id"] == attendance_id
    await consents.revoke_consent(network.uow(), network.as_clinic, back.id)
    revoked = await clinic.get(f"Encounter/{attendance_id}")
    assert revoked.status_code == 403
    assert revoked.json()["issue"][0]["details"]["coding"][0]["code"] == "CONSENT_REVOKED"
    assert (await clinic.get(f"Encounter/{network.patient.id}")).status_code == 404


async def test_the_holding_organization_reads_every_access_in_the_audit_trail(
    network: Network, peer: Fhir, clinic: Fhir, stranger: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    await _attendance(network)
    await peer.ok("GET", patient)
    await peer.ok("GET", f"Encounter?patient={patient}")

    everything: list[dict[str, Any]] = []
    path: str | None = f"AuditEvent?patient={patient}&_count=2"
    while path:
        bundle = await clinic.ok("GET", path)
        everything += entries(bundle)
        nexts = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        path = nexts[0].split("/fhir/", 1)[1] if nexts else None
    ids = [e["id"] for e in everything]
    assert len(ids) == len(set(ids)) > 4
    recorded = [e["recorded"] for e in everything]
    assert recorded == sorted(recorded, reverse=True)
    peers = {
        e["id"]
        for e in everything
        if e["agent"][0]["who"]["reference"].endswith(str(network.peer.id))
    }
    assert peers

    own = entries(await peer.ok("GET", f"AuditEvent?patient={patient}&_count=100"))
    assert own and {e["id"] for e in own} <= peers
    one = next(iter(peers))
    assert (await clinic.ok("GET", f"AuditEvent/{one}"))["entity"][0]["what"] == {
        "reference": patient
    }
    assert (await peer.ok("GET", f"AuditEvent/{one}"))["id"] == one
    clinic_event = next(e["id"] for e in everything if e["id"] not in peers)
    assert (await peer.get(f"AuditEvent/{clinic_event}")).status_code == 403
    assert (await stranger.get(f"AuditEvent/{one}")).status_code == 404
    assert (await stranger.get(f"AuditEvent?patient={patient}")).status_code == 404
    assert (await clinic.get(f"AuditEvent/{one}/_history/1")).status_code == 405


async def test_observation_and_questionnaire_response_search_parameters(
    network: Network, peer: Fhir
) -> None:
    await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    measure = await outcomes.record_outcome_measure(
        network.uow(),
        network.as_peer,
        outcomes.RecordOutcomeMeasure(
            patient_id=network.patient.id,
            instrument=Instrument.PHQ9,
            item_answers=(1, 1, 2, 1, 0, 1, 1, 0, 0),
        ),
    )
    patient = f"patient=Patient/{network.patient.id}"
    phq9 = "https://peerbridge.example.org/fhir/Questionnaire/phq9"
    hits = {
        f"Observation?{patient}&category=survey&status=final&code=http://loinc.org|44261-6": 1,
        f"Observation?{patient}&category=laboratory": 0,
        f"Observation?{patient}&status=preliminary": 0,
        f"Observation?_id={measure.id}&code=44261-6": 1,
        f"Observation?_id={measure.id}&code=70274-6": 0,
        f"QuestionnaireResponse?{patient}&author=Organization/{network.peer.id}"
        f"&questionnaire={phq9}&status=completed": 1,
        f"QuestionnaireResponse?{patient}&author=Organization/{network.clinic.id}": 0,
        f"QuestionnaireResponse?{patient}&questionnaire={phq9.replace('phq9', 'gad7')}": 0,
        f"QuestionnaireResponse?{patient}&status=in-progress": 0,
    }
    for query, expected in hits.items():
        assert len(entries(await peer.ok("GET", query))) == expected, query
    response = await peer.get("Observation?category=survey")
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["patient"]


async def test_service_request_search_by_code_category_and_intent(
    network: Network, clinic: Fhir
) -> None:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    patient = f"patient=Patient/{network.patient.id}"
    hits = {
        "code=461481000124109": 1,
        "code=http://snomed.info/sct|461481000124109": 1,
        "code=390866009": 0,
        "code=http://loinc.org|461481000124109": 0,
        "category=clinic_to_peer&code=461481000124109": 1,
        "category=peer_to_clinic&code=461481000124109": 0,
        "intent=order": 1,
        "intent=http://hl7.org/fhir/request-intent|order": 1,
        "intent=plan": 0,
    }
    for query, expected in hits.items():
        found = entries(await clinic.ok("GET", f"ServiceRequest?{patient}&{query}"))
        assert [r["id"] for r in found] == [str(view.referral.id)] * expected, query


def _value(kind: str, name: str, network: Network) -> str:
    if name == "identifier":
        return "urn:example|none"
    if name == "_sort":
        return "_lastUpdated"
    if name == "overdue":  # true | false, anything else is refused
        return "true"
    if kind == "date":
        return "ge2026-01-01"
    if kind == "token" and name != "_id":
        return "x"
    return str(network.patient.id)  # _id and references: an id (of nothing, mostly)


async def test_every_search_parameter_the_capability_statement_lists_is_served(
    client: httpx.AsyncClient, network: Network, clinic: Fhir
) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    resources = statement["rest"][0]["resource"]
    checked = 0
    for resource in resources:
        kind = resource["type"]
        names = {p["name"] for p in resource.get("searchParam", ())}
        for param in resource.get("searchParam", ()):
            query = f"{param['name']}={_value(param['type'], param['name'], network)}"
            if "patient" in names and param["name"] != "patient":
                query += f"&patient=Patient/{network.patient.id}"
            response = await clinic.get(f"{kind}?{query}")
            assert response.status_code == 200, (kind, query, response.text)
            checked += 1
        for include in resource.get("searchInclude", ()):
            query = f"_id={network.patient.id}&_include={include}"
            assert (await clinic.get(f"{kind}?{query}")).status_code == 200, (kind, include)
        codes = {i["code"] for i in resource["interaction"]}
        if "create" not in codes:
            refused = await clinic.request("POST", kind, {"resourceType": kind})
            assert refused.status_code == 405, (kind, refused.text)
        if "update" not in codes:
            refused = await clinic.request("PUT", f"{kind}/{network.patient.id}", {})
            assert refused.status_code == 405, (kind, refused.text)
        if "search-type" in codes:
            unknown = await clinic.get(f"{kind}?colour=blue")
            assert unknown.status_code == 400, kind
    assert checked > 50
    listed = {r["type"]: {i["code"] for i in r["interaction"]} for r in resources}
    assert {"create", "read", "search-type"} <= listed["Procedure"]
    assert {"create", "read", "search-type"} <= listed["DocumentReference"]
    assert listed["AuditEvent"] == {"read", "search-type"}
    assert (await clinic.get("Goal?_id=x")).status_code == 400  # not served, not listed
