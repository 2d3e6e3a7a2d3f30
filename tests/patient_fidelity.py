"""What a clinic's EHR sends as a Patient, and how to compare what PeerBridge returns with it
(shared by the Patient fidelity tests and the validator contract tests)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from network import MRN_SYSTEM

Json = dict[str, Any]
IG_FIXTURES = Path(__file__).parent / "fixtures" / "ig"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
OMB = "urn:oid:2.16.840.1.113883.6.238"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"


def ig_patients() -> dict[str, Json]:
    """The official IG example Patients (tests/fixtures/ig/README.md says where from)."""
    return {
        f"{path.parent.name}/{path.stem}": json.loads(path.read_text())
        for path in sorted(IG_FIXTURES.glob("*/*.json"))
        if json.loads(path.read_text()).get("resourceType") == "Patient"
    }


def rich_patient(mrn: str | None = None) -> Json:
    """Every element the brief lists, in the shapes EHRs send: a maiden name ended by marriage,
    two current names, two MRNs of one system (the old one ended), ranked telecoms, two
    languages, race/ethnicity/birth sex, a contact, a general practitioner, a narrative."""
    mrn = mrn or f"MRN-{secrets.token_hex(4)}"
    return {
        "resourceType": "Patient",
        "meta": {
            "profile": [f"{US_CORE}/us-core-patient|7.0.0"],
            "tag": [{"system": "https://ehr.example.org/tags", "code": "imported"}],
        },
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">María José Núñez Ortega</div>',
        },
        "extension": [
            {
                "url": f"{US_CORE}/us-core-race",
                "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": OMB, "code": "2106-3"}},
                    {"url": "text", "valueString": "White"},
                ],
            },
            {
                "url": f"{US_CORE}/us-core-ethnicity",
                "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": OMB, "code": "2135-2"}},
                    {"url": "detailed", "valueCoding": {"system": OMB, "code": "2148-5"}},
                    {"url": "text", "valueString": "Hispanic or Latino"},
                ],
            },
            {"url": f"{US_CORE}/us-core-birthsex", "valueCode": "F"},
            {"url": "https://ehr.example.org/fhir/StructureDefinition/vip", "valueBoolean": False},
        ],
        "identifier": [
            {
                "use": "old",
                "type": {"coding": [{"system": V2_0203, "code": "MR"}], "text": "Old MRN"},
                "system": MRN_SYSTEM,
                "value": f"{mrn}-OLD",
                "period": {"end": "2019-12-31"},
            },
            {
                "use": "usual",
                "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "MRN"}]},
                "system": MRN_SYSTEM,
                "value": mrn,
                "period": {"start": "2020-01-01"},
                "assigner": {"display": "Riverside Clinic"},
            },
        ],
        "active": True,
        "name": [
            {
                "use": "maiden",
                "family": "Ortega",
                "given": ["María", "José"],
                "period": {"end": "2015-06-20"},
            },
            {"use": "nickname", "given": ["Majo"]},
            {
                "use": "official",
                "text": "Dr. María José Núñez Ortega",
                "family": "Núñez Ortega",
                "given": ["María", "José"],
                "prefix": ["Dr."],
                "suffix": ["PhD"],
                "period": {"start": "2015-06-20"},
            },
        ],
        "telecom": [
            {"system": "phone", "value": "+1 555 0100", "use": "old", "rank": 1},
            {"system": "phone", "value": "+1 555 0101", "use": "home", "rank": 2},
            {"system": "phone", "value": "+1 555 0102", "use": "mobile", "rank": 1},
            {"system": "email", "value": "majo@example.org", "use": "home"},
            {"system": "sms", "value": "+1 555 0102", "period": {"start": "2024-01-01"}},
        ],
        "gender": "female",
        "birthDate": "1984-03-09",
        "_birthDate": {
            "extension": [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                    "valueDateTime": "1984-03-09T04:15:00-05:00",
                }
            ]
        },
        "deceasedBoolean": False,
        "address": [
            {
                "use": "home",
                "line": ["12 Elm St", "Apt 3"],
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62704",
                "country": "US",
                "period": {"start": "2020-01-01"},
            },
            {"use": "old", "text": "4 Old Rd, Springfield", "period": {"end": "2019-12-31"}},
        ],
        "maritalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}
            ]
        },
        "multipleBirthBoolean": False,
        "contact": [
            {
                "relationship": [{"coding": [{"system": V2_0131, "code": "N"}]}],
                "name": {"family": "Núñez", "given": ["Luis"]},
                "telecom": [{"system": "phone", "value": "+1 555 0199"}],
            }
        ],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}},
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}],
                    "text": "Spanish (Mexico)",
                },
                "preferred": True,
            },
        ],
        "generalPractitioner": [
            {"reference": "Practitioner/ehr-4711", "display": "Dr. Ana Li"},
        ],
    }


def as_returned(sent: Json, returned: Json) -> Json:
    """`returned` without what the server assigns (id, meta versionId/lastUpdated, and the
    managing organization when the client left it out), for comparing with `sent`."""
    out = {k: v for k, v in returned.items() if k != "id"}
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items()}
    meta.pop("versionId", None)
    meta.pop("lastUpdated", None)
    if meta:
        out["meta"] = meta
    if "managingOrganization" not in sent:
        out.pop("managingOrganization", None)
    return out


def sent_form(sent: Json) -> Json:
    """`sent` without the client's own id (a server assigns ids on create)."""
    return {k: v for k, v in sent.items() if k != "id"}
