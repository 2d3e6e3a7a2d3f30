"""The two FHIR-only workflows, as request builders and small drivers shared by the e2e tests
(clinic with fhirpy over real HTTP, peer organization with httpx) and the contract tests."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_support import Fhir, entries
from network import MRN_SYSTEM, Network

BASE = "https://peerbridge.example.org/fhir"
DATA_CLASS = f"{BASE}/CodeSystem/data-class"
Json = dict[str, Any]


def _consent(patient: str, recipient: str, classes: list[str], purpose: str) -> Json:
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
        "patient": {"reference": patient},
        "policyRule": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/consentpolicycodes",
                    "code": "hipaa-auth",
                }
            ]
        },
        "sourceAttachment": {"url": "https://clinic.example.org/forms/consent-signed.pdf"},
        "provision": {
            "type": "permit",
            "period": {"start": (datetime.now(UTC) - timedelta(minutes=5)).isoformat()},
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
                    "reference": {"reference": recipient},
                }
            ],
            "purpose": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose}
            ],
            "class": [{"system": DATA_CLASS, "code": c} for c in classes],
        },
    }


SIGNED_PDF = b"%PDF-1.4\n% signed consent form\n%%EOF\n"


def consent_form(patient: str, *, inline: bool = False, data: bytes = SIGNED_PDF) -> Json:
    """The signed consent form as a DocumentReference: a link, or the PDF inline."""
    attachment: Json = {"contentType": "application/pdf", "title": "Signed consent form"}
    if inline:
        attachment["data"] = base64.b64encode(data).decode()
    else:
        attachment["url"] = "https://clinic.example.org/forms/consent-signed.pdf"
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "59284-0"}]},
        "subject": {"reference": patient},
        "content": [{"attachment": attachment}],
    }


def referral_transaction(
    network: Network, mrn: str | None = None, *, signed_form: bool = False
) -> Json:
    """What a clinic posts: Patient, two Consents (to the peer organization, and the peer
    organization's results back to the clinic), ServiceRequest and Task, linked by urn:uuid.
    With `signed_form`, the signed form too (a DocumentReference after the Patient), which the
    first Consent cites as its sourceReference."""
    patient, consent, back, sr, task = (f"urn:uuid:{secrets.token_hex(16)}" for _ in range(5))
    peer = f"Organization/{network.peer.id}"
    clinic = f"Organization/{network.clinic.id}"
    resources = [
        (
            patient,
            {
                "resourceType": "Patient",
                "identifier": [
                    {"system": MRN_SYSTEM, "value": mrn or f"MRN-{secrets.token_hex(4)}"}
                ],
                "name": [{"family": "Okafor", "given": ["Chidi"]}],
                "gender": "male",
                "birthDate": "1988-02-03",
            },
        ),
        (
            consent,
            _consent(
                patient, peer, ["demographics", "referral", "sessions", "outcomes"], "CAREMGT"
            ),
        ),
        (back, _consent(patient, clinic, ["sessions", "outcomes"], "TREAT")),
        (
            sr,
            {
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "priority": "urgent",
                "code": {
                    "coding": [{"system": "http://snomed.info/sct", "code": "461481000124109"}]
                },
                "subject": {"reference": patient},
                "requester": {"reference": clinic},
                "performer": [
                    {"reference": peer},
                    {"reference": f"HealthcareService/{network.program.id}"},
                ],
                "reasonCode": [
                    {"coding": [{"system": "http://snomed.info/sct", "code": "35489007"}]},
                    {"text": "isolated after discharge, wants peer support"},
                ],
                "supportingInfo": [{"reference": consent}],
            },
        ),
        (
            task,
            {
                "resourceType": "Task",
                "status": "requested",
                "intent": "order",
                "code": {
                    "coding": [
                        {"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}
                    ]
                },
                "focus": {"reference": sr},
                "for": {"reference": patient},
                "requester": {"reference": clinic},
                "owner": {"reference": peer},
            },
        ),
    ]
    if signed_form:
        form = f"urn:uuid:{secrets.token_hex(16)}"
        consent_resource = resources[1][1]
        del consent_resource["sourceAttachment"]
        consent_resource["sourceReference"] = {"reference": form}
        resources.insert(1, (form, consent_form(patient)))
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
            for urn, r in resources
        ],
    }


def _phq9(patient: str, referral: str, answers: list[int]) -> Json:
    codes = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
             "44253-3", "44260-8"]  # fmt: skip
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{BASE}/Questionnaire/phq9",
        "status": "completed",
        "subject": {"reference": patient},
        "basedOn": [{"reference": referral}],
        "authored": datetime.now(UTC).isoformat(),
        "item": [
            {"linkId": code, "answer": [{"valueInteger": a}]}
            for code, a in zip(codes, answers, strict=True)
        ],
    }


def acceptance_transaction(network: Network, task: Json) -> Json:
    """The peer organization's "accepted + assigned + first session + PHQ-9" in one request."""
    referral = f"ServiceRequest/{task['id']}"
    patient = task["for"]["reference"]
    session = f"urn:uuid:{secrets.token_hex(16)}"
    start = datetime.now(UTC) - timedelta(hours=2)
    accepted = {
        **task,
        "status": "accepted",
        "extension": [
            {
                "url": f"{BASE}/StructureDefinition/assigned-supporter",
                "valueReference": {"reference": f"PractitionerRole/{network.supporter.id}"},
            }
        ],
    }
    encounter_type = [
        {"coding": [{"system": f"{BASE}/CodeSystem/session-format", "code": "one_on_one"}]},
        {"coding": [{"system": f"{BASE}/CodeSystem/delivery-mode", "code": "in_person"}]},
    ]
    act = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": accepted,
                "request": {"method": "PUT", "url": f"Task/{task['id']}", "ifMatch": 'W/"1"'},
            },
            {
                "fullUrl": session,
                "resource": {
                    "resourceType": "Encounter",
                    "extension": [
                        {
                            "url": f"{BASE}/StructureDefinition/peer-program",
                            "valueReference": {
                                "reference": f"HealthcareService/{network.program.id}"
                            },
                        }
                    ],
                    "status": "finished",
                    "class": {"system": act, "code": "AMB"},
                    "type": encounter_type,
                    "period": {
                        "start": start.isoformat(),
                        "end": (start + timedelta(minutes=60)).isoformat(),
                    },
                    "serviceProvider": {"reference": f"Organization/{network.peer.id}"},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "resource": {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": act, "code": "AMB"},
                    "subject": {"reference": patient},
                    "basedOn": [{"reference": referral}],
                    "partOf": {"reference": session},
                },
                "request": {"method": "POST", "url": "Encounter"},
            },
            {
                "resource": _phq9(patient, referral, [1, 1, 2, 1, 0, 1, 1, 0, 0]),
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }


async def move_task(fhir: Fhir, task_id: str, status: str, reason: str | None = None) -> Json:
    task = await fhir.ok("GET", f"Task/{task_id}")
    changed = {**task, "status": status}
    if reason:
        changed["statusReason"] = {"text": reason}
    version = task["meta"]["versionId"]
    return await fhir.ok("PUT", f"Task/{task_id}", changed, **{"if-match": f'W/"{version}"'})


def procedure(task: Json, organization: str, **elements: Any) -> Json:
    """What a light recipient records: peer services (H0038) delivered for the referral; units
    and period left to the server (from the attendance recorded)."""
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "basedOn": [{"reference": f"ServiceRequest/{task['id']}"}],
        "code": {
            "coding": [
                {
                    "system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                    "code": "H0038",
                }
            ]
        },
        "subject": task["for"],
        "performer": [{"actor": {"reference": organization}}],
        **elements,
    }


def completion_transaction(network: Network, task: Json) -> Json:
    """Gravity's light recipient: record the Procedure and complete the Task naming it as
    output, in one transaction."""
    urn = f"urn:uuid:{secrets.token_hex(16)}"
    version = task["meta"]["versionId"]
    completed = {
        **task,
        "status": "completed",
        "output": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/"
                            "SDOHCC-CodeSystemTemporaryCodes",
                            "code": "resulting-activity",
                        }
                    ]
                },
                "valueReference": {"reference": urn},
            }
        ],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": urn,
                "resource": procedure(task, f"Organization/{network.peer.id}"),
                "request": {"method": "POST", "url": "Procedure"},
            },
            {
                "resource": completed,
                "request": {
                    "method": "PUT",
                    "url": f"Task/{task['id']}",
                    "ifMatch": f'W/"{version}"',
                },
            },
        ],
    }


async def peer_side(peer: Fhir, network: Network, since: str) -> str:
    """The peer organization, with FHIR alone: poll, read, accept+assign+session+PHQ-9, work,
    complete. Returns the referral id."""
    bundle = await peer.ok(
        "GET",
        f"Task?owner=Organization/{network.peer.id}&status=requested"
        f"&_lastUpdated=gt{since.replace('+', '%2B')}&_include=Task:focus&_include=Task:patient",
    )
    (task,) = entries(bundle, "match")
    included = {r["resourceType"]: r for r in entries(bundle, "include")}
    service_request = included["ServiceRequest"]
    assert included["Patient"]["name"][0]["family"] == "Okafor"
    consent_ref = service_request["supportingInfo"][0]["reference"]
    consent = await peer.ok("GET", consent_ref)
    assert consent["status"] == "active"
    done = await peer.ok("POST", "", acceptance_transaction(network, task))
    assert [e["response"]["status"][:3] for e in done["entry"]] == ["200", "201", "201", "201"]
    started = await move_task(peer, task["id"], "in-progress")
    done = await peer.ok("POST", "", completion_transaction(network, started))
    assert [e["response"]["status"][:3] for e in done["entry"]] == ["201", "200"]
    return str(task["id"])
