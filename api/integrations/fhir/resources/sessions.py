"""Sessions and attendance ↔ FHIR Encounter.

A session is an Encounter without a subject (the group event); each participant's attendance is
an Encounter `partOf` it, with the billable facts (HCPCS H0038, modifiers, units) and the BSeR
event code (5.1.4 completed, 5.1.2 unattended = no-show, 5.1.3 cancelled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.encounter import Encounter

from api.domain.errors import Invalid
from api.domain.programs import DeliveryMode
from api.domain.referrals import BSER_SYSTEM
from api.domain.sessions import (
    Attendance,
    AttendanceStatus,
    Billing,
    PeerSession,
    SessionFormat,
)
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    coding,
    concept,
    extension_value,
    extensions,
    finish,
    instant,
    meta,
    meta_version,
    parse_instant,
    ref,
    ref_id,
)

_ENCOUNTER_CLASS = {
    DeliveryMode.IN_PERSON: ("AMB", "ambulatory"),
    DeliveryMode.VIRTUAL: ("VR", "virtual"),
    DeliveryMode.PHONE: ("VR", "virtual"),
}
_ATTENDANCE_OF_BSER = {code: status for status, (code, _) in codes.ATTENDANCE_BSER.items()}


def to_fhir_session_encounter(session: PeerSession) -> Json:
    code, display = _ENCOUNTER_CLASS[session.delivery_mode]
    return finish(
        Encounter,
        {
            "resourceType": "Encounter",
            "id": str(session.id),
            "meta": meta(session.version, session.updated_at),
            "extension": [
                {
                    "url": codes.EXT_PROGRAM,
                    "valueReference": ref("HealthcareService", session.program_id),
                },
                *(
                    {"url": codes.EXT_FACILITATOR, "valueReference": ref("PractitionerRole", f)}
                    for f in session.facilitator_ids
                ),
                *(
                    [{"url": codes.EXT_SESSION_CAPACITY, "valuePositiveInt": session.capacity}]
                    if session.capacity
                    else []
                ),
                *(
                    [{"url": codes.EXT_TOPIC, "valueString": session.topic}]
                    if session.topic
                    else []
                ),
            ],
            "status": "finished",
            "class": coding(_ACT_CODE, code, display),
            "type": [
                concept(codes.CS_SESSION_FORMAT, session.format.value),
                concept(codes.CS_DELIVERY_MODE, session.delivery_mode.value),
            ],
            "serviceType": concept(codes.HCPCS, "H0038", codes.H0038_DISPLAY),
            "period": {"start": instant(session.starts_at), "end": instant(session.ends_at)},
            "length": {
                "value": session.minutes,
                "unit": "min",
                "system": "http://unitsofmeasure.org",
                "code": "min",
            },
            "participant": [
                {"individual": ref("PractitionerRole", f)} for f in session.facilitator_ids
            ],
            "serviceProvider": ref("Organization", session.organization_id),
        },
    )


_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def to_fhir_attendance_encounter(attendance: Attendance, session: PeerSession) -> Json:
    code, display = _ENCOUNTER_CLASS[session.delivery_mode]
    bser, bser_display = codes.ATTENDANCE_BSER[attendance.status]
    billing = attendance.billing
    return finish(
        Encounter,
        {
            "resourceType": "Encounter",
            "id": str(attendance.id),
            "meta": meta(attendance.version, attendance.updated_at, part2=attendance.substance_use),
            "extension": [
                {
                    "url": codes.EXT_ATTENDANCE,
                    "valueCoding": coding(BSER_SYSTEM, bser, bser_display),
                },
                {
                    "url": codes.EXT_BILLING,
                    "extension": [
                        {"url": "units", "valueUnsignedInt": billing.units},
                        {"url": "code", "valueCoding": coding(codes.HCPCS, billing.hcpcs_code)},
                        *({"url": "modifier", "valueCode": m} for m in billing.modifiers),
                    ],
                },
                *(
                    [{"url": codes.EXT_NOTE, "valueString": attendance.note}]
                    if attendance.note
                    else []
                ),
            ],
            "status": codes.ENCOUNTER_STATUS[attendance.status],
            "class": coding(_ACT_CODE, code, display),
            "type": [concept(codes.CS_SESSION_FORMAT, session.format.value)],
            "serviceType": concept(codes.HCPCS, billing.hcpcs_code, codes.H0038_DISPLAY),
            "subject": ref("Patient", attendance.patient_id),
            "basedOn": [ref("ServiceRequest", attendance.referral_id)]
            if attendance.referral_id
            else [],
            "period": {"start": instant(session.starts_at), "end": instant(session.ends_at)},
            "partOf": ref("Encounter", session.id),
            "serviceProvider": ref("Organization", attendance.organization_id),
        },
    )


def from_fhir_session(resource: Mapping[str, Any]) -> PeerSession:
    version, updated_at = meta_version(resource)
    period = resource.get("period", {})
    formats = codes_in(resource.get("type"), codes.CS_SESSION_FORMAT)
    modes = codes_in(resource.get("type"), codes.CS_DELIVERY_MODE)
    if not formats or not modes:
        raise Invalid("name the session format and delivery mode", field="Encounter.type")
    program = extension_value(resource, codes.EXT_PROGRAM, "valueReference")
    return PeerSession(
        id=UUID(resource["id"]),
        program_id=ref_id(program, "HealthcareService", "Encounter.extension"),
        organization_id=ref_id(
            resource.get("serviceProvider"), "Organization", "Encounter.serviceProvider"
        ),
        format=SessionFormat(formats[0]),
        delivery_mode=DeliveryMode(modes[0]),
        starts_at=parse_instant(period.get("start", ""), "Encounter.period.start"),
        ends_at=parse_instant(period.get("end", ""), "Encounter.period.end"),
        facilitator_ids=tuple(
            ref_id(e["valueReference"], "PractitionerRole", "Encounter.extension")
            for e in extensions(resource, codes.EXT_FACILITATOR)
        ),
        capacity=extension_value(resource, codes.EXT_SESSION_CAPACITY, "valuePositiveInt"),
        topic=extension_value(resource, codes.EXT_TOPIC, "valueString"),
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )


def attendance_status(resource: Mapping[str, Any]) -> AttendanceStatus:
    found = extension_value(resource, codes.EXT_ATTENDANCE, "valueCoding") or {}
    if found.get("code") in _ATTENDANCE_OF_BSER:
        return _ATTENDANCE_OF_BSER[found["code"]]
    if resource.get("status") == "finished":
        return AttendanceStatus.ATTENDED
    if resource.get("status") == "cancelled":
        return AttendanceStatus.CANCELLED
    raise Invalid("an attendance is finished or cancelled", field="Encounter.status")


def from_fhir_attendance(resource: Mapping[str, Any]) -> Attendance:
    version, updated_at = meta_version(resource)
    billing = extension_value(resource, codes.EXT_BILLING, "extension") or []
    units = [e["valueUnsignedInt"] for e in billing if e["url"] == "units"]
    hcpcs = [e["valueCoding"]["code"] for e in billing if e["url"] == "code"]
    based_on = resource.get("basedOn") or []
    labels = {s.get("code") for s in (resource.get("meta") or {}).get("security", ())}
    return Attendance(
        id=UUID(resource["id"]),
        session_id=ref_id(resource.get("partOf"), "Encounter", "Encounter.partOf"),
        patient_id=ref_id(resource.get("subject"), "Patient", "Encounter.subject"),
        organization_id=ref_id(
            resource.get("serviceProvider"), "Organization", "Encounter.serviceProvider"
        ),
        referral_id=ref_id(based_on[0], "ServiceRequest", "Encounter.basedOn[0]")
        if based_on
        else None,
        status=attendance_status(resource),
        billing=Billing(
            units[0] if units else 0,
            hcpcs[0] if hcpcs else "H0038",
            tuple(e["valueCode"] for e in billing if e["url"] == "modifier"),
        ),
        substance_use="42CFRPart2" in labels,
        note=extension_value(resource, codes.EXT_NOTE, "valueString"),
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )
