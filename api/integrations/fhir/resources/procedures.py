"""Procedure (what a referral's performer delivered) ↔ FHIR Procedure: `basedOn` the referral's
ServiceRequest, HCPCS H0038 or SNOMED CT code, performed period, billed 15-minute units.

The Task of the referral lists its Procedures as `output` (Gravity "resulting-activity").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.procedure import Procedure as FhirProcedure

from api.domain.errors import Invalid
from api.domain.procedures import Procedure, ProcedureStatus
from api.domain.referrals import Coding
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    coding,
    finish,
    instant,
    meta,
    meta_version,
    parse_instant,
    parse_ref,
    ref,
    ref_id,
)
from api.services.procedures import RecordProcedure

# Elements a client may send; anything else FHIR allows is refused rather than dropped unseen.
_ACCEPTED = frozenset(
    {
        "resourceType", "id", "meta", "text", "extension", "basedOn", "status", "category",
        "code", "subject", "performedPeriod", "performer",
    }
)  # fmt: skip


def to_fhir_procedure(procedure: Procedure, *, redacted: bool = False) -> Json:
    organization = ref("Organization", procedure.performer_organization_id)
    performers: list[Json] = [{"actor": organization}]
    if procedure.supporter_id:
        performers.append(
            {"actor": ref("PractitionerRole", procedure.supporter_id), "onBehalfOf": organization}
        )
    category = procedure.category
    return finish(
        FhirProcedure,
        {
            "resourceType": "Procedure",
            "id": str(procedure.id),
            "meta": meta(
                procedure.version, procedure.updated_at, part2=procedure.part2, redacted=redacted
            ),
            "extension": [
                {
                    "url": codes.EXT_BILLING,
                    "extension": [{"url": "units", "valueUnsignedInt": procedure.units}],
                }
            ]
            if procedure.units is not None
            else [],
            "basedOn": [ref("ServiceRequest", procedure.referral_id)],
            "status": procedure.status.value,
            "category": {"coding": [coding(category.system, category.code)]} if category else None,
            "code": {"coding": [coding(c.system, c.code, c.display) for c in procedure.codes]},
            "subject": ref("Patient", procedure.patient_id),
            "performedPeriod": {
                "start": instant(procedure.performed_start),
                "end": instant(procedure.performed_end) if procedure.performed_end else None,
            }
            if procedure.performed_start
            else None,
            "performer": performers,
        },
    )


def _status(resource: Mapping[str, Any]) -> ProcedureStatus:
    try:
        return ProcedureStatus(str(resource.get("status")))
    except ValueError as error:
        raise Invalid(
            "PeerBridge records in-progress, completed or not-done deliveries",
            field="Procedure.status",
        ) from error


def _codings(concept: Mapping[str, Any] | None, where: str) -> tuple[Coding, ...]:
    found = []
    for index, item in enumerate((concept or {}).get("coding", ())):
        if "system" not in item or "code" not in item:
            raise Invalid("a coding needs a system and a code", field=f"{where}.coding[{index}]")
        found.append(Coding(item["system"], item["code"], item.get("display")))
    return tuple(found)


def _performers(resource: Mapping[str, Any]) -> tuple[UUID | None, UUID | None]:
    """(organization, peer supporter) named as performers."""
    organization = supporter = None
    for index, performer in enumerate(resource.get("performer", ())):
        where = f"Procedure.performer[{index}].actor"
        kind, ident = parse_ref(performer.get("actor"), where)
        if kind == "Organization" and organization is None:
            organization = ident
        elif kind == "PractitionerRole" and supporter is None:
            supporter = ident
        else:
            raise Invalid("one Organization and at most one PractitionerRole", field=where)
    return organization, supporter


def _units(resource: Mapping[str, Any]) -> int | None:
    for extension in resource.get("extension", ()):
        if extension.get("url") != codes.EXT_BILLING:
            raise Invalid("unknown extension", field="Procedure.extension")
        for part in extension.get("extension", ()):
            if part.get("url") != "units" or "valueUnsignedInt" not in part:
                raise Invalid("billing carries units (unsignedInt)", field="Procedure.extension")
            return int(part["valueUnsignedInt"])
    return None


def record_procedure_command(resource: Mapping[str, Any]) -> RecordProcedure:
    """What a referral's performer POSTs: the referral, status, code, period, units."""
    for key in resource:
        if key not in _ACCEPTED:
            raise Invalid("PeerBridge does not store this element", field=f"Procedure.{key}")
    based_on = resource.get("basedOn") or []
    if len(based_on) != 1:
        raise Invalid("name the referral: one ServiceRequest", field="Procedure.basedOn")
    categories = _codings(resource.get("category"), "Procedure.category")
    if len(categories) > 1:
        raise Invalid("one category coding", field="Procedure.category")
    performer_organization, supporter = _performers(resource)
    period = resource.get("performedPeriod") or {}
    return RecordProcedure(
        referral_id=ref_id(based_on[0], "ServiceRequest", "Procedure.basedOn[0]"),
        status=_status(resource),
        codes=_codings(resource.get("code"), "Procedure.code"),
        patient_id=ref_id(resource.get("subject"), "Patient", "Procedure.subject"),
        performer_organization_id=performer_organization,
        category=Coding(categories[0].system, categories[0].code) if categories else None,
        supporter_id=supporter,
        performed_start=parse_instant(period["start"], "Procedure.performedPeriod.start")
        if "start" in period
        else None,
        performed_end=parse_instant(period["end"], "Procedure.performedPeriod.end")
        if "end" in period
        else None,
        units=_units(resource),
    )


def from_fhir_procedure(resource: Mapping[str, Any]) -> Procedure:
    """Rebuild a stored Procedure from its FHIR form (what we store, nothing more)."""
    version, updated_at = meta_version(resource)
    command = record_procedure_command(resource)
    assert command.patient_id is not None and command.performer_organization_id is not None
    labels = {s.get("code") for s in (resource.get("meta") or {}).get("security", ())}
    return Procedure(
        id=UUID(resource["id"]),
        referral_id=command.referral_id,
        patient_id=command.patient_id,
        performer_organization_id=command.performer_organization_id,
        supporter_id=command.supporter_id,
        status=command.status,
        codes=command.codes,
        category=command.category,
        performed_start=command.performed_start,
        performed_end=command.performed_end,
        units=command.units,
        part2="42CFRPart2" in labels,
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )
