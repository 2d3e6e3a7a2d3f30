"""Patient (participant) ↔ FHIR Patient. Everything but the id is PHI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.patient import Patient as FhirPatient

from api.domain.errors import Invalid
from api.domain.patients import Gender, Patient, PatientIdentifier
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    concept,
    finish,
    meta,
    meta_version,
    parse_date,
    ref,
    ref_id,
)
from api.services.patients import RegisterPatient


def to_fhir_patient(patient: Patient) -> Json:
    return finish(
        FhirPatient,
        {
            "resourceType": "Patient",
            "id": str(patient.id),
            "meta": meta(patient.version, patient.updated_at),
            "identifier": [{"system": i.system, "value": i.value} for i in patient.identifiers],
            "name": [
                {"use": "official", "family": patient.family_name, "given": [patient.given_name]}
            ],
            "telecom": [
                *([{"system": "phone", "value": patient.phone}] if patient.phone else []),
                *([{"system": "email", "value": patient.email}] if patient.email else []),
            ],
            "gender": patient.gender.value,
            "birthDate": patient.birth_date.isoformat() if patient.birth_date else None,
            "communication": [
                {"language": concept(codes.BCP47, patient.preferred_language), "preferred": True}
            ]
            if patient.preferred_language
            else [],
            "managingOrganization": ref("Organization", patient.managing_organization_id),
        },
    )


def _telecom(resource: Mapping[str, Any], system: str) -> str | None:
    found = [t["value"] for t in resource.get("telecom", ()) if t.get("system") == system]
    return found[0] if found else None


def register_patient_command(resource: Mapping[str, Any]) -> RegisterPatient:
    """What a client POSTs (the server assigns id, version and managing organization)."""
    names = resource.get("name") or []
    if not names:
        raise Invalid("a patient needs a name", field="Patient.name")
    name = names[0]
    language = [
        c["code"]
        for comm in resource.get("communication", ())
        for c in comm.get("language", {}).get("coding", ())
        if c.get("system") == codes.BCP47
    ]
    birth = resource.get("birthDate")
    return RegisterPatient(
        identifiers=tuple(
            PatientIdentifier(i.get("system", ""), i.get("value", ""))
            for i in resource.get("identifier", ())
        ),
        given_name=" ".join(name.get("given", ())),
        family_name=name.get("family", ""),
        birth_date=parse_date(birth, "Patient.birthDate") if birth else None,
        gender=Gender(resource.get("gender", "unknown")),
        phone=_telecom(resource, "phone"),
        email=_telecom(resource, "email"),
        preferred_language=language[0] if language else None,
    )


def from_fhir_patient(resource: Mapping[str, Any]) -> Patient:
    version, updated_at = meta_version(resource)
    command = register_patient_command(resource)
    return Patient(
        id=UUID(resource["id"]),
        managing_organization_id=ref_id(
            resource.get("managingOrganization"), "Organization", "Patient.managingOrganization"
        ),
        identifiers=command.identifiers,
        given_name=command.given_name,
        family_name=command.family_name,
        birth_date=command.birth_date,
        gender=command.gender,
        phone=command.phone,
        email=command.email,
        preferred_language=command.preferred_language,
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )
