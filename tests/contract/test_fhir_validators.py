"""Every FHIR resource PeerBridge produces passes two independent R4 validators with zero
errors: @medplum/core 4.5 (R4 StructureDefinitions) and FHIR.js 4.12 — one Node process each
for the mapper samples and for everything the API returned in the FHIR flows."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))
sys.path.insert(0, str(Path(__file__).parent))

import fhir_strategies as s  # noqa: E402
from fhir_flows import consent_form, peer_side, referral_transaction  # noqa: E402
from fhir_support import Fhir, entries  # noqa: E402
from fhir_validator import expand, node_available, validate  # noqa: E402
from fidelity import full_service_request, full_task  # noqa: E402
from network import Network  # noqa: E402
from patient_fidelity import ig_patients, rich_patient  # noqa: E402

from api.domain.referrals import ReferralStatus  # noqa: E402
from api.integrations.fhir.resources.audit import to_fhir_audit_event  # noqa: E402
from api.integrations.fhir.resources.consents import to_fhir_consent  # noqa: E402
from api.integrations.fhir.resources.documents import to_fhir_document_reference  # noqa: E402
from api.integrations.fhir.resources.locations import to_fhir_location  # noqa: E402
from api.integrations.fhir.resources.measures import (  # noqa: E402
    to_fhir_observation,
    to_fhir_questionnaire_response,
)
from api.integrations.fhir.resources.organizations import to_fhir_organization  # noqa: E402
from api.integrations.fhir.resources.patients import to_fhir_patient  # noqa: E402
from api.integrations.fhir.resources.procedures import to_fhir_procedure  # noqa: E402
from api.integrations.fhir.resources.programs import to_fhir_healthcare_service  # noqa: E402
from api.integrations.fhir.resources.referrals import (  # noqa: E402
    to_fhir_service_request,
    to_fhir_task,
)
from api.integrations.fhir.resources.sessions import (  # noqa: E402
    to_fhir_attendance_encounter,
    to_fhir_session_encounter,
)
from api.integrations.fhir.resources.supporters import (  # noqa: E402
    to_fhir_practitioner,
    to_fhir_practitioner_role,
)
from api.services import programs  # noqa: E402


def _location(network: Network) -> dict[str, Any]:
    """A Location with modelled and kept elements of every kind."""
    return {
        "resourceType": "Location",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-location"]},
        "identifier": [{"system": "http://example.org/sites", "value": "HALL-7"}],
        "status": "active",
        "name": "Grace Church Hall",
        "alias": ["The Hall"],
        "mode": "instance",
        "type": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "COMM"}
                ]
            }
        ],
        "telecom": [{"system": "phone", "value": "+1 555 0100", "use": "work", "rank": 1}],
        "address": {
            "use": "work",
            "line": ["12 Elm St"],
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62701",
            "period": {"start": "2020-01-01"},
        },
        "physicalType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": "bu",
                }
            ]
        },
        "position": {"longitude": -89.65, "latitude": 39.78, "altitude": 0},
        "managingOrganization": {"reference": f"Organization/{network.peer.id}"},
        "hoursOfOperation": [{"daysOfWeek": ["tue"], "openingTime": "18:00:00"}],
        "extension": [{"url": "http://example.org/fhir/parking", "valueBoolean": True}],
    }


pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(not node_available(), reason="needs Node and the locked npm packages"),
]
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _mapped_samples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    @settings(max_examples=25, database=None, derandomize=True, deadline=None)
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        out.append(to_fhir_organization(data.draw(s.organizations)))
        out.append(to_fhir_healthcare_service(data.draw(s.programs)))
        supporter = data.draw(s.supporters())
        out.extend([to_fhir_practitioner(supporter), to_fhir_practitioner_role(supporter)])
        out.append(to_fhir_patient(data.draw(s.patients)))
        consent = data.draw(s.consents())
        out.append(to_fhir_consent(consent, now=NOW))
        out.append(to_fhir_document_reference(data.draw(s.consent_forms())))
        referral = data.draw(s.referrals())
        out.extend([to_fhir_service_request(referral), to_fhir_task(referral)])
        procedure = data.draw(s.procedures())
        done = replace(referral, status=ReferralStatus.COMPLETED)
        out.append(to_fhir_task(done, outputs=[procedure.id]))
        out.extend([to_fhir_procedure(procedure), to_fhir_procedure(procedure, redacted=True)])
        attendance, session = data.draw(s.attendances())
        out.append(to_fhir_session_encounter(session))
        out.append(to_fhir_attendance_encounter(attendance, session))
        measure = data.draw(s.measures())
        out.extend([to_fhir_questionnaire_response(measure), to_fhir_observation(measure)])
        out.append(to_fhir_audit_event(data.draw(s.audit_events)))
        out.append(to_fhir_location(data.draw(s.locations)))

    collect()
    return out


def test_every_mapped_resource_type_passes_both_validators() -> None:
    resources = _mapped_samples()
    types = {r["resourceType"] for r in resources}
    assert types == {
        "Organization",
        "HealthcareService",
        "Practitioner",
        "PractitionerRole",
        "Patient",
        "Consent",
        "DocumentReference",
        "ServiceRequest",
        "Task",
        "Procedure",
        "Encounter",
        "QuestionnaireResponse",
        "Observation",
        "AuditEvent",
        "Location",
    }
    assert validate(resources) == []


def test_validators_catch_what_fhir_resources_lets_through() -> None:
    """The validators are live: the wrong input fhir.resources accepts is refused here."""
    bad = [
        {"resourceType": "Task", "status": "bogus", "intent": "order"},
        {"resourceType": "Patient", "active": "yes"},
    ]
    problems = validate(bad)
    assert any("fhirjs" in p and "Task" in p for p in problems)
    assert any("medplum" in p and "Patient" in p for p in problems)


@pytest.fixture
async def fhir_api_responses(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> list[dict[str, Any]]:
    """Walk both FHIR flows and every read/search/error shape; keep every body returned."""
    seen: list[dict[str, Any]] = [(await client.get("/fhir/metadata")).json()]
    clinic = await Fhir.as_organization(client, pool, network.clinic, seen=seen)
    peer = await Fhir.as_organization(client, pool, network.peer, seen=seen)
    started = datetime.now(UTC).isoformat()
    posted = await clinic.ok("POST", "", referral_transaction(network, signed_form=True))
    patient_id = posted["entry"][0]["resource"]["id"]
    consent_id = posted["entry"][2]["resource"]["id"]
    form_id = posted["entry"][1]["resource"]["id"]
    referral_id = await peer_side(peer, network, started)
    patient = f"Patient/{patient_id}"
    task = await clinic.ok("GET", f"Task/{referral_id}")
    procedure_id = task["output"][0]["valueReference"]["reference"].split("/")[1]
    attendance = await clinic.ok("GET", f"Encounter?patient={patient}")
    audit = await clinic.ok("GET", f"AuditEvent?patient={patient}&_count=5")
    inline = await clinic.ok("POST", "DocumentReference", consent_form(patient, inline=True))
    hall = await peer.ok("POST", "Location", _location(network))
    await programs.upsert_program(
        network.uow(),
        network.as_peer,
        programs.UpsertPeerProgram(
            name=network.program.name,
            kind=network.program.kind,
            id=network.program.id,
            expected_version=network.program.version,
            location_ids=(UUID(hall["id"]),),
        ),
    )
    for path in (
        f"ServiceRequest/{referral_id}",
        f"Procedure/{procedure_id}",
        f"Consent/{consent_id}",
        f"DocumentReference/{form_id}",
        f"DocumentReference/{inline['id']}",
        f"DocumentReference?patient={patient}",
        f"Consent?source-reference=DocumentReference/{form_id}&_include=Consent:source-reference",
        f"Encounter/{entries(attendance)[0]['id']}",
        f"AuditEvent/{entries(audit)[0]['id']}",
        f"Procedure?based-on=ServiceRequest/{referral_id}&code=H0038&status=completed",
        f"Observation?patient={patient}&category=survey&status=final",
        f"QuestionnaireResponse?patient={patient}&author=Organization/{network.peer.id}",
        f"Organization/{network.peer.id}",
        f"HealthcareService/{network.program.id}",
        f"Practitioner/{network.supporter.id}",
        f"PractitionerRole/{network.supporter.id}",
        f"ServiceRequest?patient={patient}&_include=ServiceRequest:patient"
        "&_include=ServiceRequest:supporting-info&_include=ServiceRequest:performer"
        "&_include=ServiceRequest:requester&_revinclude=Task:focus",
        f"Task?_id={referral_id}&_include=Task:focus&_include=Task:output&_include=Task:owner",
        f"Task?output=Procedure/{procedure_id}",
        f"Procedure?patient={patient}",
        "Procedure?status=bogus-status",
        f"Procedure/{network.peer.id}",
        f"Consent?patient={patient}&_include=Consent:source-reference",
        f"Observation?patient={patient}",
        f"QuestionnaireResponse?patient={patient}",
        f"Encounter?patient={patient}",
        f"PractitionerRole?organization=Organization/{network.peer.id}"
        "&_include=PractitionerRole:organization&_include=PractitionerRole:practitioner",
        "HealthcareService?type=support_group",
        f"Location/{hall['id']}",
        "Location?address-city=springfield&_sort=_lastUpdated",
        f"HealthcareService?location=Location/{hall['id']}&_include=HealthcareService:location",
        "Task?colour=blue",
        f"Task/{network.peer.id}",
    ):
        await clinic.get(path)
    observations = await clinic.ok("GET", f"Observation?patient={patient}")
    for observation in entries(observations):
        await clinic.ok("GET", f"Observation/{observation['id']}")
        await clinic.ok("GET", f"QuestionnaireResponse/{observation['id']}")
    await peer.ok(
        "POST",
        "",
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Task/{referral_id}"}},
                {"request": {"method": "GET", "url": f"Patient/{network.peer.id}"}},
                {"request": {"method": "GET", "url": f"Task?owner=Organization/{network.peer.id}"}},
            ],
        },
    )
    # Patients kept as sent (official IG examples and every element EHRs send) read back.
    for index, sent in enumerate([*ig_patients().values(), rich_patient()]):
        holder = (clinic, peer)[index % 2]  # two IG examples share one MRN: two organizations
        created = await holder.ok("POST", "Patient", sent)
        await holder.ok("GET", f"Patient/{created['id']}")
    return seen


async def test_everything_the_fhir_api_returned_passes_both_validators(
    fhir_api_responses: list[dict[str, Any]],
) -> None:
    resources = expand(fhir_api_responses)
    types = {r["resourceType"] for r in resources}
    assert {
        "CapabilityStatement",
        "Bundle",
        "OperationOutcome",
        "Procedure",
        "Task",
        "Patient",
        "ServiceRequest",
        "Consent",
        "DocumentReference",
        "Observation",
        "Encounter",
        "QuestionnaireResponse",
        "Practitioner",
        "PractitionerRole",
        "HealthcareService",
        "Organization",
        "AuditEvent",
        "Location",
    } <= types
    print(f"validated {len(resources)} API resources of {len(types)} types")
    assert validate(resources) == []


async def test_orders_kept_as_sent_pass_both_validators(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    """A ServiceRequest and Task with the elements clinics send (kept as sent), as created,
    read, searched, moved by the performer, and redacted after the consent is revoked."""
    seen: list[dict[str, Any]] = []
    clinic = await Fhir.as_organization(client, pool, network.clinic, seen=seen)
    peer = await Fhir.as_organization(client, pool, network.peer, seen=seen)
    order = await clinic.ok("POST", "ServiceRequest", full_service_request(network))
    task = await clinic.ok("POST", "Task", full_task(network, f"ServiceRequest/{order['id']}"))
    await peer.ok("GET", f"Task?_id={order['id']}&_include=Task:focus")
    await peer.ok(
        "PUT",
        f"Task/{task['id']}",
        {**task, "status": "accepted"},
        **{"if-match": f'W/"{task["meta"]["versionId"]}"'},
    )
    consent = await clinic.ok("GET", f"Consent/{network.consent.id}")
    await clinic.ok(
        "PUT",
        f"Consent/{consent['id']}",
        {**consent, "status": "inactive"},
        **{"if-match": f'W/"{consent["meta"]["versionId"]}"'},
    )
    await peer.ok("GET", f"ServiceRequest?_id={order['id']}&_revinclude=Task:focus")
    resources = expand(seen)
    assert {r["resourceType"] for r in resources} >= {"ServiceRequest", "Task", "Consent"}
    assert validate(resources) == []
