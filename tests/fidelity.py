"""Comparing what a client sent with what it reads back (the fidelity rule): every element sent
comes back as sent; the server may add `id`, `meta` and elements the client left out."""

from __future__ import annotations

import uuid
from typing import Any

from network import Network

Json = dict[str, Any]
SNOMED = "http://snomed.info/sct"
PLACER = "urn:oid:2.16.840.1.113883.3.9999.7"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"

# meta elements a client may send that the server keeps beside its own.
_META_LABELS = ("profile", "tag", "security", "source")


def differences(sent: Json, read: Json) -> list[str]:
    """The elements of `sent` that `read` does not return as sent (empty: kept)."""
    problems = []
    for key, value in sent.items():
        if key in ("id", "resourceType"):
            continue
        if key == "meta":
            mine = read.get("meta") or {}
            for label in _META_LABELS:
                if label not in value:
                    continue
                given, got = value[label], mine.get(label)
                ok = got == given if isinstance(given, str) else all(v in got for v in given)
                if not ok:
                    problems.append(f"meta.{label}")
        elif key == "extension":
            # Every extension sent, in the order sent (the server may add its own before them).
            remaining = iter(read.get("extension", ()))
            for extension in value:
                if not any(extension == candidate for candidate in remaining):
                    problems.append(f"extension[url={extension.get('url')}]")
                    break
        elif read.get(key) != value:
            problems.append(key)
    return problems


def assert_kept(sent: Json, read: Json) -> None:
    found = differences(sent, read)
    assert not found, f"not read back as sent: {found}"


def full_service_request(network: Network) -> Json:
    """A clinic's order with the elements the Gravity and BSeR examples use."""
    return {
        "resourceType": "ServiceRequest",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/SDOHCC-ServiceRequest"
            ]
        },
        "extension": [
            {"url": "https://clinic.example.org/fhir/ext/pathway", "valueString": "B"},
            *(
                {
                    "url": "https://peerbridge.example.org/fhir/StructureDefinition/shared-data-class",
                    "valueCoding": {
                        "system": "https://peerbridge.example.org/fhir/CodeSystem/data-class",
                        "code": code,
                        "display": display,
                    },
                }
                for code, display in (("referral", "Referral"), ("demographics", "Demographics"))
            ),
        ],
        "identifier": [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}
                    ]
                },
                "system": PLACER,
                "value": f"PO-{uuid.uuid4().hex[:8]}",
                "assigner": {"display": "Saint Luke clinic"},
            }
        ],
        "basedOn": [{"reference": "CarePlan/discharge-plan-7", "display": "Discharge plan"}],
        "status": "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": SNOMED, "code": "410606002", "display": "Social service procedure"},
                    {"system": "https://clinic.example.org/category", "code": "bh"},
                ]
            },
            {"text": "behavioural health"},
        ],
        "priority": "urgent",
        "code": {
            "coding": [
                {"system": SNOMED, "code": "711281004", "display": "Referral to support group"},
                {"system": "https://clinic.example.org/orders", "code": "PEER-GRP"},
            ],
            "text": "Peer support group",
        },
        "subject": {"reference": f"Patient/{network.patient.id}", "display": "Ada Testperson"},
        "occurrencePeriod": {"start": "2026-12-01", "end": "2027-03-01"},
        "authoredOn": "2026-11-20T09:15:00-05:00",
        "requester": {"reference": "PractitionerRole/dr-jan-water", "display": "Dr Jan Water"},
        "performer": [{"reference": f"Organization/{network.peer.id}", "display": "Peers"}],
        "reasonCode": [
            {
                "coding": [
                    {"system": SNOMED, "code": "35489007", "display": "Depressive disorder"}
                ],
                "text": "low mood since discharge",
            }
        ],
        "reasonReference": [{"reference": "Condition/depression-2026"}],
        "insurance": [{"reference": "Coverage/medicaid-pa"}],
        "supportingInfo": [
            {"reference": f"Consent/{network.consent.id}"},
            {"reference": "Bundle/referral-document-7"},
        ],
        "note": [{"text": "prefers evening groups", "time": "2026-11-20T09:20:00.5-05:00"}],
        "patientInstruction": "Bring your discharge papers",
    }


def full_task(network: Network, focus: str) -> Json:
    return {
        "resourceType": "Task",
        "identifier": [{"system": PLACER, "value": f"T-{uuid.uuid4().hex[:8]}"}],
        "status": "requested",
        "intent": "order",
        "priority": "urgent",
        "code": {
            "coding": [
                {"system": TASK_CODE, "code": "fulfill"},
                {"system": "https://clinic.example.org/tasks", "code": "peer-intake"},
            ]
        },
        "description": "Connect the patient with a peer support group",
        "focus": {"reference": focus},
        "for": {"reference": f"Patient/{network.patient.id}", "display": "Ada Testperson"},
        "executionPeriod": {"start": "2026-11-20T09:15:00-05:00"},
        "authoredOn": "2026-11-20T09:16:00-05:00",
        "requester": {"reference": "PractitionerRole/dr-jan-water"},
        "owner": {"reference": f"Organization/{network.peer.id}"},
        "note": [{"text": "call before 5pm"}],
        "restriction": {"period": {"end": "2027-01-01"}},
    }
