"""Resources as clinics' and peer organizations' systems write them, with the elements the
fidelity rule is about (standard codes, inline PDFs, LOINC questionnaires): shared by the e2e
fidelity tests and the validator contract tests."""

from __future__ import annotations

import base64
from typing import Any

from fhir_flows import SIGNED_PDF
from network import Network

from api.domain.outcomes import INSTRUMENTS, Instrument

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC = "http://loinc.org"
PDF = base64.b64encode(SIGNED_PDF).decode()
# LOINC answer list LL358-3: score → answer code and display.
ANSWERS = {
    0: ("LA6568-5", "Not at all"),
    1: ("LA6569-3", "Several days"),
    2: ("LA6570-1", "More than half the days"),
    3: ("LA6571-9", "Nearly every day"),
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def consent(network: Network, **elements: Any) -> dict[str, Any]:
    """A consent as a clinic's EHR writes it: standard codes, a signed PDF inline."""
    return {
        "resourceType": "Consent",
        "meta": {"profile": ["http://hl7.org/fhir/us/sdoh-clinicalcare/StructureDefinition/"
                             "SDOHCC-Consent"]},
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.3.9999.7", "value": "C-1"}],
        "status": "active",
        "scope": {"coding": [coding("http://terminology.hl7.org/CodeSystem/consentscope",
                                    "patient-privacy", "Privacy Consent")]},
        "category": [{"coding": [coding(ACT_CODE, "IDSCL", "information disclosure")]}],
        "patient": {"reference": f"Patient/{network.patient.id}"},
        "dateTime": "2026-05-01",
        "performer": [{"reference": f"Patient/{network.patient.id}", "display": "the patient"}],
        "organization": [{"reference": f"Organization/{network.clinic.id}"}],
        "sourceAttachment": {"contentType": "application/pdf", "language": "en", "data": PDF,
                             "title": "Signed release"},
        "policyRule": {"coding": [coding(ACT_CODE, "OPTIN")]},
        "verification": [{"verified": True, "verificationDate": "2026-05-01"}],
        "provision": {
            "type": "permit",
            "period": {"start": "2026-05-01"},
            "actor": [{
                "role": {"coding": [coding(
                    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")]},
                "reference": {"reference": f"Organization/{network.peer.id}"},
            }],
            "action": [{"coding": [coding(
                "http://terminology.hl7.org/CodeSystem/consentaction", "disclose")]}],
            "purpose": [coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT",
                               "treatment")],
            "class": [coding("http://hl7.org/fhir/resource-types", "Patient")],
            "securityLabel": [coding(ACT_CODE, "PSY", "psychiatry disorder information "
                                     "sensitivity")],
            "provision": [{"type": "permit", "securityLabel": [coding(ACT_CODE, "42CFRPart2")]}],
        },
        **elements,
    }  # fmt: skip


def delivery(network: Network, referral_id: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Procedure",
        "basedOn": [{"reference": f"ServiceRequest/{referral_id}"}],
        "status": "completed",
        "category": {"coding": [coding("http://snomed.info/sct", "410606002", "Social service"),
                                coding("urn:example:domain", "mental-health")]},
        "code": {"coding": [coding("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                                   "H0038")], "text": "Peer support"},
        "subject": {"reference": f"Patient/{network.patient.id}"},
        "performedDateTime": "2026-10-05T14:00:00-04:00",
        "note": [{"text": "Met at the library; talked about work.", "time": "2026-10-05"}],
        "reasonCode": [{"text": "isolation"}],
        "location": {"reference": "Location/main-library", "display": "Main library"},
        "outcome": {"text": "plans a second meeting"},
        "report": [{"reference": "DocumentReference/notes-1"}],
        "extension": [{"url": "http://example.org/fhir/StructureDefinition/visit-mode",
                       "valueCode": "in-person"}],
        **elements,
    }  # fmt: skip


def response(
    network: Network, questionnaire: str, items: list[dict[str, Any]], **elements: Any
) -> dict[str, Any]:
    return {
        "resourceType": "QuestionnaireResponse",
        "identifier": {"system": "urn:example:forms", "value": "F-77"},
        "questionnaire": questionnaire,
        "status": "completed",
        "subject": {"reference": f"Patient/{network.patient.id}"},
        "authored": "2026-10-05T14:30:00-04:00",
        "source": {"reference": f"Patient/{network.patient.id}"},
        "item": items,
        **elements,
    }


def coded(instrument: Instrument, scores: list[int], *, slash: bool = False) -> list[Any]:
    """Items with LOINC answer codes, linkIds as LOINC item codes (LHC-Forms: "/44250-9")."""
    spec = INSTRUMENTS[instrument]
    return [
        {
            "linkId": ("/" if slash else "") + code,
            "text": f"item {n}",
            "answer": [
                {"valueCoding": {"system": LOINC, "code": ANSWERS[s][0], "display": ANSWERS[s][1]}}
            ],
        }
        for n, (code, s) in enumerate(zip(spec.item_codes, scores, strict=True), 1)
    ]


def scored(instrument: Instrument, scores: list[int]) -> list[Any]:
    spec = INSTRUMENTS[instrument]
    return [
        {"linkId": code, "answer": [{"valueInteger": s}]}
        for code, s in zip(spec.item_codes, scores, strict=True)
    ]


