"""Referral ↔ FHIR ServiceRequest + Task (Gravity SDOH Clinical Care, BSeR business status).

ServiceRequest and Task share the referral's id. The Task carries the workflow status and lists
the Procedures the performer recorded as its `output`; the ServiceRequest the order (codes,
priority, requester, performers, consent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from api.domain.consents import DataClass
from api.domain.errors import Invalid
from api.domain.referrals import (
    BSER_SYSTEM,
    Coding,
    Direction,
    OrderIdentifier,
    Priority,
    Referral,
    ReferralStatus,
)
from api.domain.verbatim import kept_for
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    coding,
    concept,
    extension_value,
    finish,
    instant,
    meta,
    meta_version,
    parse_instant,
    parse_ref,
    ref,
    ref_id,
)
from api.integrations.fhir.resources.kept import Keeping, merge

# What the mappers model (see `kept.py`); every other element is kept as the requester sent it.
# ServiceRequest: status and priority change with the workflow; the performers are the ones sent
# plus the supporter the performer assigns later (`_performers`). The escalation link is written
# from the record (GraphQL sets it); the data classes shared are read from the extensions sent
# and kept as sent (they never change), written from the record when none were sent.
SERVICE_REQUEST = Keeping(
    "ServiceRequest",
    owned=frozenset({"status", "priority"}),
    extensions=frozenset({codes.EXT_ESCALATED_FROM}),
)
# Task: its workflow state is the record's (both parties change it; outputs are the Procedures
# recorded), and so is the supporter the performer assigns.
TASK = Keeping(
    "Task",
    owned=frozenset(
        {"status", "statusReason", "businessStatus", "priority", "lastModified", "output"}
    ),
    extensions=frozenset({codes.EXT_ASSIGNED_SUPPORTER}),
)


def _meta(referral: Referral, redacted: bool) -> Json:
    return meta(referral.version, referral.updated_at, part2=referral.is_part2, redacted=redacted)


def _direction_concept(direction: Direction) -> Json:
    return concept(codes.CS_DIRECTION, direction.value)


def _codings(found: Sequence[Coding]) -> list[Json]:
    return [coding(c.system, c.code, c.display) for c in found]


def _kept(referral: Referral, document_type: str, redacted: bool) -> dict[str, Any]:
    return {} if redacted else dict(kept_for(referral.verbatim, document_type))


def _performers(referral: Referral, sent: Sequence[Json]) -> list[Json]:
    """The performers as sent, then those PeerBridge adds (the supporter assigned later)."""
    ours = [ref("Organization", referral.performer_organization_id)]
    if referral.program_id:
        ours.append(ref("HealthcareService", referral.program_id))
    if referral.assigned_supporter_id:
        ours.append(ref("PractitionerRole", referral.assigned_supporter_id))
    named = {p.get("reference") for p in sent}
    return [*sent, *(p for p in ours if p["reference"] not in named)]


def _sent_first(ours: list[Json], kept: Mapping[str, Any]) -> list[Json]:
    """Our extensions of the URLs the sender did not send itself (its own are kept as sent)."""
    sent = {e.get("url") for e in kept.get("extension", ())}
    return [e for e in ours if e["url"] not in sent]


def to_fhir_service_request(referral: Referral, *, redacted: bool = False) -> Json:
    kept = _kept(referral, "ServiceRequest", redacted)
    reasons: list[Json] = [
        {"coding": [coding(c.system, c.code, c.display)]} for c in referral.reason_codes
    ]
    if referral.reason_text:
        reasons.append({"text": referral.reason_text})
    # The direction's own category; what the requester sent (kept) replaces the whole list.
    categories = [{"coding": _codings(referral.categories)}, _direction_concept(referral.direction)]
    extensions: list[Json] = [
        {"url": codes.EXT_SHARED_DATA_CLASS, "valueCoding": coding(codes.CS_DATA_CLASS, c.value)}
        for c in sorted(referral.shared_data_classes)
    ]
    if referral.escalated_from_id:
        extensions.append(
            {
                "url": codes.EXT_ESCALATED_FROM,
                "valueReference": ref("ServiceRequest", referral.escalated_from_id),
            }
        )
    mapped: Json = {
        "resourceType": "ServiceRequest",
        "id": str(referral.id),
        "meta": _meta(referral, redacted),
        "extension": _sent_first(extensions, kept),
        "identifier": [{"system": i.system, "value": i.value} for i in referral.identifiers],
        "status": codes.SERVICE_REQUEST_STATUS[referral.status],
        "intent": "order",
        "category": categories,
        "priority": referral.priority.value,
        "code": {"coding": _codings(referral.service)},
        "subject": ref("Patient", referral.patient_id),
        "authoredOn": instant(referral.created_at),
        "requester": ref("Organization", referral.requester_organization_id),
        "performer": _performers(referral, kept.pop("performer", [])),
        "reasonCode": reasons,
        "supportingInfo": [ref("Consent", referral.consent_id)] if referral.consent_id else [],
    }
    return finish(ServiceRequest, merge(mapped, kept))


def _business_status(referral: Referral) -> Json | None:
    found = referral.business_status
    return concept(BSER_SYSTEM, *found) if found else None


def to_fhir_task(
    referral: Referral, *, redacted: bool = False, outputs: Sequence[UUID] = ()
) -> Json:
    """`outputs`: the Procedures recorded for the referral (Gravity "resulting-activity")."""
    mapped: Json = {
        "resourceType": "Task",
        "id": str(referral.id),
        "meta": _meta(referral, redacted),
        "extension": [
            {
                "url": codes.EXT_ASSIGNED_SUPPORTER,
                "valueReference": ref("PractitionerRole", referral.assigned_supporter_id),
            }
        ]
        if referral.assigned_supporter_id
        else [],
        "status": referral.status.value,
        "statusReason": {"text": referral.status_reason} if referral.status_reason else None,
        "businessStatus": _business_status(referral),
        "intent": "order",
        "priority": referral.priority.value,
        "code": concept(codes.TASK_CODE, "fulfill", "Fulfill the focal request"),
        "focus": ref("ServiceRequest", referral.id),
        "for": ref("Patient", referral.patient_id),
        "authoredOn": instant(referral.created_at),
        "lastModified": instant(referral.updated_at),
        "requester": ref("Organization", referral.requester_organization_id),
        "owner": ref("Organization", referral.performer_organization_id),
        "output": [
            {
                "type": concept(codes.GRAVITY_TEMP, "resulting-activity", "Resulting Activity"),
                "valueReference": ref("Procedure", procedure_id),
            }
            for procedure_id in outputs
        ],
    }
    return finish(Task, merge(mapped, _kept(referral, "Task", redacted)))


def priority_of(resource: Mapping[str, Any], where: str) -> Priority:
    try:
        return Priority(resource.get("priority", "routine"))
    except ValueError as error:
        raise Invalid("must be routine, urgent, asap or stat", field=where) from error


def codings_of(concepts: Sequence[Mapping[str, Any]]) -> tuple[Coding, ...]:
    """Every coding with a system and a code, of CodeableConcepts, in order (for searches; the
    concepts themselves are kept as sent)."""
    return tuple(
        Coding(c["system"], c["code"], c.get("display"))
        for item in concepts
        for c in item.get("coding", ())
        if "system" in c and "code" in c
    )


def reasons_of(resource: Mapping[str, Any]) -> tuple[tuple[Coding, ...], str | None]:
    """The coded reasons and the reasons' texts (one per line), as GraphQL shows them."""
    reasons = resource.get("reasonCode", ())
    texts = [item["text"] for item in reasons if "text" in item]
    return codings_of(reasons), "\n".join(texts) or None


def shared_classes_of(resource: Mapping[str, Any]) -> frozenset[DataClass]:
    found: list[DataClass] = []
    for index, extension in enumerate(resource.get("extension", ())):
        if extension.get("url") != codes.EXT_SHARED_DATA_CLASS:
            continue
        where = f"ServiceRequest.extension[{index}]"
        value = extension.get("valueCoding") or {}
        try:
            data_class = DataClass(str(value.get("code")))
        except ValueError as error:
            raise Invalid("unknown data class", field=where) from error
        if value.get("system") != codes.CS_DATA_CLASS or data_class in found:
            raise Invalid(f"one valueCoding of {codes.CS_DATA_CLASS} per class", field=where)
        found.append(data_class)
    return frozenset(found)


def performers_of(resource: Mapping[str, Any]) -> dict[str, UUID]:
    found: dict[str, UUID] = {}
    for index, performer in enumerate(resource.get("performer", ())):
        kind, ident = parse_ref(performer, f"ServiceRequest.performer[{index}]")
        if kind in found or kind not in ("Organization", "HealthcareService", "PractitionerRole"):
            raise Invalid(
                "one Organization, at most one HealthcareService and one PractitionerRole",
                field=f"ServiceRequest.performer[{index}]",
            )
        found[kind] = ident
    if "Organization" not in found:
        raise Invalid("name the performing organization", field="ServiceRequest.performer")
    return found


def from_fhir_referral(service_request: Mapping[str, Any], task: Mapping[str, Any]) -> Referral:
    """Rebuild the referral from its ServiceRequest and Task (what we store, nothing more)."""
    version, updated_at = meta_version(task)
    performers = performers_of(service_request)
    directions = codes_in(service_request.get("category"), codes.CS_DIRECTION)
    reason_codes, reason_text = reasons_of(service_request)
    escalated = extension_value(service_request, codes.EXT_ESCALATED_FROM, "valueReference")
    assigned = extension_value(task, codes.EXT_ASSIGNED_SUPPORTER, "valueReference")
    consents = service_request.get("supportingInfo") or []
    return Referral(
        id=UUID(service_request["id"]),
        direction=Direction(directions[0]) if directions else Direction.CLINIC_TO_PEER,
        requester_organization_id=ref_id(
            service_request.get("requester"), "Organization", "ServiceRequest.requester"
        ),
        performer_organization_id=performers["Organization"],
        program_id=performers.get("HealthcareService"),
        patient_id=ref_id(service_request.get("subject"), "Patient", "ServiceRequest.subject"),
        priority=priority_of(service_request, "ServiceRequest.priority"),
        reason_codes=reason_codes,
        reason_text=reason_text,
        shared_data_classes=shared_classes_of(service_request),
        consent_id=ref_id(consents[0], "Consent", "ServiceRequest.supportingInfo[0]")
        if consents
        else None,
        status=ReferralStatus(task["status"]),
        status_reason=(task.get("statusReason") or {}).get("text"),
        assigned_supporter_id=ref_id(assigned, "PractitionerRole", "Task.extension")
        if assigned
        else None,
        escalated_from_id=ref_id(escalated, "ServiceRequest", "ServiceRequest.extension")
        if escalated
        else None,
        version=version,
        created_at=parse_instant(task["authoredOn"], "Task.authoredOn"),
        updated_at=updated_at,
        code=codings_of([service_request["code"]]),
        categories=tuple(
            c
            for c in codings_of(service_request.get("category", ()))
            if c.system != codes.CS_DIRECTION
        ),
        identifiers=identifiers_of(service_request),
    )


def identifiers_of(resource: Mapping[str, Any]) -> tuple[OrderIdentifier, ...]:
    """The business identifiers that have a value (searchable as `identifier=`)."""
    return tuple(
        OrderIdentifier(i.get("system"), i["value"])
        for i in resource.get("identifier", ())
        if "value" in i
    )
