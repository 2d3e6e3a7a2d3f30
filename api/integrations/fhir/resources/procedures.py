"""Procedure (what a referral's performer delivered) ↔ FHIR Procedure: `basedOn` the referral's
ServiceRequest, HCPCS H0038 or SNOMED CT code, performed period, billed 15-minute units.

The Task of the referral lists its Procedures as `output` (Gravity "resulting-activity").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from fhir.resources.R4B.procedure import Procedure as FhirProcedure

from api.domain.errors import Invalid
from api.domain.procedures import Procedure, ProcedureStatus
from api.domain.referrals import Coding
from api.domain.verbatim import kept_for, with_kept
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    coding,
    finish,
    instant,
    meta,
    meta_version,
    parse_date_time,
    parse_ref,
    ref,
    ref_id,
)
from api.integrations.fhir.resources.kept import Keeping, merge
from api.services.procedures import RecordProcedure

# The record's truth: its status and the references PeerBridge checks (the referral, patient
# and performers). Code, category and performed[x] are kept as sent and read for the rules and
# searches; everything else (note, reasonCode, location, outcome, report ...) is kept as sent.
KEEPING = Keeping(
    "Procedure",
    owned=frozenset({"status", "basedOn", "subject", "performer"}),
    extensions=frozenset({codes.EXT_BILLING}),
)
# performed[x] a delivery can be billed from: a moment or a period.
_UNTIMED = ("performedString", "performedAge", "performedRange")


def to_fhir_procedure(procedure: Procedure, *, redacted: bool = False) -> Json:
    organization = ref("Organization", procedure.performer_organization_id)
    performers: list[Json] = [{"actor": organization}]
    if procedure.supporter_id:
        performers.append(
            {"actor": ref("PractitionerRole", procedure.supporter_id), "onBehalfOf": organization}
        )
    # A redacted stub shows nothing the performer sent (the service withholds it too).
    kept = {} if redacted else kept_for(procedure.verbatim, "Procedure")
    resource: Json = {
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
        "category": {"coding": [coding(c.system, c.code) for c in procedure.categories]},
        "code": {"coding": [coding(c.system, c.code, c.display) for c in procedure.codes]},
        "subject": ref("Patient", procedure.patient_id),
        "performer": performers,
    }
    if not any(key.startswith("performed") for key in kept) and procedure.performed_start:
        resource["performedPeriod"] = {
            "start": instant(procedure.performed_start),
            "end": instant(procedure.performed_end) if procedure.performed_end else None,
        }
    return finish(FhirProcedure, merge(resource, kept))


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
            continue  # kept as sent
        for part in extension.get("extension", ()):
            if part.get("url") != "units" or "valueUnsignedInt" not in part:
                raise Invalid("billing carries units (unsignedInt)", field="Procedure.extension")
            return int(part["valueUnsignedInt"])
    return None


def _performed(resource: Mapping[str, Any]) -> tuple[datetime | None, datetime | None, bool]:
    """(start, end, whether they bound a duration) of performedDateTime or performedPeriod.

    A moment, or a period given only to the day (month, year), states no duration to hold the
    billed units against; its times are the start of the day (month, year), in UTC."""
    for key in _UNTIMED:
        if key in resource:
            raise Invalid(
                "PeerBridge needs the time of a delivery: performedDateTime or performedPeriod",
                field=f"Procedure.{key}",
            )
    if "performedDateTime" in resource:
        moment = parse_date_time(resource["performedDateTime"], "Procedure.performedDateTime")
        return moment, moment, False
    period = resource.get("performedPeriod") or {}
    where = "Procedure.performedPeriod"
    start = parse_date_time(period["start"], f"{where}.start") if "start" in period else None
    end = parse_date_time(period["end"], f"{where}.end") if "end" in period else None
    timed = all("T" in period[key] for key in ("start", "end") if key in period)
    return start, end, timed


def record_procedure_command(resource: Mapping[str, Any]) -> RecordProcedure:
    """What a referral's performer POSTs: the referral, status, code, period, units; every
    element but the record's own is kept as sent."""
    based_on = resource.get("basedOn") or []
    if len(based_on) != 1:
        raise Invalid(
            "PeerBridge records deliveries against a referral: name one ServiceRequest",
            field="Procedure.basedOn",
        )
    performer_organization, supporter = _performers(resource)
    start, end, timed = _performed(resource)
    return RecordProcedure(
        referral_id=ref_id(based_on[0], "ServiceRequest", "Procedure.basedOn[0]"),
        status=_status(resource),
        codes=_codings(resource.get("code"), "Procedure.code"),
        patient_id=ref_id(resource.get("subject"), "Patient", "Procedure.subject"),
        performer_organization_id=performer_organization,
        categories=_codings(resource.get("category"), "Procedure.category"),
        supporter_id=supporter,
        performed_start=start,
        performed_end=end,
        units=_units(resource),
        duration_stated=timed,
        verbatim=with_kept({}, "Procedure", KEEPING.split(resource)),
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
        categories=command.categories,
        performed_start=command.performed_start,
        performed_end=command.performed_end,
        units=command.units,
        part2="42CFRPart2" in labels,
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
        verbatim=command.verbatim,
    )
