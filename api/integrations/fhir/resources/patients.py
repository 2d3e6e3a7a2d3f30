"""Patient (participant) ↔ FHIR Patient. Everything but the id is PHI.

A Patient a clinic sends is kept whole as sent (every name with its use and period, addresses,
all telecoms, communication, identifiers with type and assigner, US Core race/ethnicity/birth-sex
and any other extension): a read returns it as sent. The columns the rules, searches and GraphQL
need are derived from it (`patient_facts`): the current name, the best current phone and email,
the preferred language, the identifiers. A patient registered through GraphQL has no FHIR source
and is shown from those columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fhir.resources.R4B.patient import Patient as FhirPatient

from api.domain.errors import Invalid, InvalidDetail
from api.domain.patients import Gender, Patient, PatientIdentifier
from api.domain.verbatim import NOTHING_KEPT, with_kept
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    concept,
    finish,
    meta,
    meta_version,
    ref,
    ref_id,
)
from api.integrations.fhir.resources.kept import Keeping, merge
from api.integrations.fhir.resources.patient_facts import (
    best_contact,
    birth_date,
    born_after,
    current_name,
    preferred_language,
)
from api.services.patients import RegisterPatient

# Nothing is owned: every element a client sends is kept as sent. managingOrganization, the one
# element the server decides, is accepted only when it already names the registering organization.
KEEPING = Keeping("Patient", owned=frozenset())

# Patient.active and Patient.link are modifiers (R4): an inactive record, or one replaced by
# another, must not be acted on, and PeerBridge's rules would still refer and disclose it.
_REPLACED_BY = "replaced-by"


def to_fhir_patient(patient: Patient) -> Json:
    """The Patient as its organization sent it (with server id and meta), or from the columns."""
    server: Json = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "meta": meta(patient.version, patient.updated_at),
        "managingOrganization": ref("Organization", patient.managing_organization_id),
    }
    if "Patient" in patient.verbatim:
        return merge(finish(FhirPatient, server), patient.verbatim["Patient"])
    return finish(
        FhirPatient,
        {
            **server,
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
        },
    )


def _refuse(resource: Mapping[str, Any], registrar: UUID, now: datetime) -> None:
    """What PeerBridge cannot honour: modifiers it does not act on, another organization as the
    record's holder, a birth in the future."""
    problems: list[InvalidDetail] = []
    if resource.get("active") is False:
        problems.append(
            InvalidDetail(
                "Patient.active",
                "PeerBridge registers records in active use; an inactive record would still be "
                "referred and disclosed here",
            )
        )
    for index, link in enumerate(resource.get("link", ())):
        if link.get("type") == _REPLACED_BY:
            problems.append(
                InvalidDetail(
                    f"Patient.link[{index}].type",
                    "this record is replaced by another: register the record in use instead",
                )
            )
    managing = resource.get("managingOrganization")
    where = "Patient.managingOrganization"
    if managing is not None and ref_id(managing, "Organization", where) != registrar:
        problems.append(
            InvalidDetail(where, "the registering organization holds the record: omit it")
        )
    if "birthDate" in resource and born_after(resource["birthDate"], now):
        problems.append(InvalidDetail("Patient.birthDate", "must not be in the future"))
    if problems:
        raise Invalid(problems)


def _identifiers(resource: Mapping[str, Any]) -> tuple[PatientIdentifier, ...]:
    found = []
    for index, identifier in enumerate(resource.get("identifier", ())):
        system, value = identifier.get("system"), identifier.get("value")
        if not system or not value:
            raise Invalid(
                "needs a system and a value (unique per system in your organization)",
                field=f"Patient.identifier[{index}]",
            )
        found.append(PatientIdentifier(system, value))
    return tuple(found)


def register_patient_command(
    resource: Mapping[str, Any], registrar: UUID, now: datetime | None = None
) -> RegisterPatient:
    """What a client POSTs: kept as sent, with the columns derived from it."""
    now = now or datetime.now(UTC)
    kept = KEEPING.split(resource)
    _refuse(resource, registrar, now)
    return _derived(resource, kept, now)


def _derived(
    resource: Mapping[str, Any], kept: Mapping[str, Any], now: datetime
) -> RegisterPatient:
    given, family = current_name(resource.get("name") or [], now)
    telecom = resource.get("telecom") or []
    return RegisterPatient(
        identifiers=_identifiers(resource),
        given_name=given,
        family_name=family,
        birth_date=birth_date(resource.get("birthDate")),
        gender=Gender(resource.get("gender", Gender.UNKNOWN.value)),
        phone=best_contact(telecom, "phone", now),
        email=best_contact(telecom, "email", now),
        preferred_language=preferred_language(resource.get("communication") or []),
        verbatim=with_kept(NOTHING_KEPT, "Patient", kept),
    )


def from_fhir_patient(resource: Mapping[str, Any]) -> Patient:
    """The record a Patient read describes (its source: the elements kept, as read)."""
    version, updated_at = meta_version(resource)
    managing = ref_id(
        resource.get("managingOrganization"), "Organization", "Patient.managingOrganization"
    )
    command = _derived(resource, KEEPING.split(resource), updated_at)
    return Patient(
        id=UUID(resource["id"]),
        managing_organization_id=managing,
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
        verbatim=command.verbatim,
    )
