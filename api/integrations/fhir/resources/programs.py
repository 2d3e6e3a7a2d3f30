"""PeerProgram ↔ FHIR HealthcareService."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.healthcareservice import HealthcareService

from api.domain.errors import Invalid
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    coding,
    extension_value,
    extensions,
    finish,
    language_concepts,
    languages,
    meta,
    meta_version,
    ref,
    ref_id,
)


def to_fhir_healthcare_service(program: PeerProgram) -> Json:
    kind_codings = [coding(codes.CS_PROGRAM_KIND, program.kind.value)]
    if program.kind in codes.PROGRAM_SNOMED:
        kind_codings.append(coding(codes.SNOMED, *codes.PROGRAM_SNOMED[program.kind]))
    return finish(
        HealthcareService,
        {
            "resourceType": "HealthcareService",
            "id": str(program.id),
            "meta": meta(program.version, program.updated_at, part2=program.substance_use_focus),
            "extension": [
                {"url": codes.EXT_ACCEPTING_REFERRALS, "valueBoolean": program.accepting_referrals},
                {"url": codes.EXT_SUBSTANCE_USE_FOCUS, "valueBoolean": program.substance_use_focus},
                *(
                    [{"url": codes.EXT_CAPACITY, "valuePositiveInt": program.capacity}]
                    if program.capacity is not None
                    else []
                ),
                *(
                    {
                        "url": codes.EXT_DELIVERY_MODE,
                        "valueCoding": coding(
                            codes.CS_DELIVERY_MODE, mode.value, codes.DELIVERY_MODE_DISPLAY[mode]
                        ),
                    }
                    for mode in program.delivery_modes
                ),
            ],
            "active": True,
            "providedBy": ref("Organization", program.organization_id),
            "category": [
                {"coding": [coding(codes.SNOMED, "461481000124109", "Referral to peer support")]}
            ],
            "type": [{"coding": kind_codings}],
            "name": program.name,
            "comment": program.description,
            "communication": language_concepts(program.languages),
            "eligibility": [
                {
                    "code": {"text": "Eligibility"},
                    "comment": program.eligibility,
                }
            ]
            if program.eligibility
            else [],
            "referralMethod": [{"coding": [coding(_REFERRAL_METHOD, "elec", "Secure Messaging")]}],
            "location": [ref("Location", location_id) for location_id in program.location_ids],
        },
    )


_REFERRAL_METHOD = "http://terminology.hl7.org/CodeSystem/service-referral-method"


def from_fhir_healthcare_service(resource: Mapping[str, Any]) -> PeerProgram:
    version, updated_at = meta_version(resource)
    kinds = codes_in(resource.get("type"), codes.CS_PROGRAM_KIND)
    if not kinds:
        raise Invalid("needs a program kind", field="HealthcareService.type")
    capacity = extension_value(resource, codes.EXT_CAPACITY, "valuePositiveInt")
    eligibility = [e.get("comment", "") for e in resource.get("eligibility", ())]
    return PeerProgram(
        id=UUID(resource["id"]),
        organization_id=ref_id(
            resource.get("providedBy"), "Organization", "HealthcareService.providedBy"
        ),
        name=resource.get("name", ""),
        kind=ProgramKind(kinds[0]),
        description=resource.get("comment", ""),
        languages=languages(resource.get("communication")),
        delivery_modes=tuple(
            DeliveryMode(e["valueCoding"]["code"])
            for e in extensions(resource, codes.EXT_DELIVERY_MODE)
        ),
        eligibility=eligibility[0] if eligibility else "",
        capacity=capacity,
        accepting_referrals=bool(
            extension_value(resource, codes.EXT_ACCEPTING_REFERRALS, "valueBoolean")
        ),
        substance_use_focus=bool(
            extension_value(resource, codes.EXT_SUBSTANCE_USE_FOCUS, "valueBoolean")
        ),
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
        location_ids=tuple(
            ref_id(location, "Location", f"HealthcareService.location[{index}]")
            for index, location in enumerate(resource.get("location", ()))
        ),
    )
