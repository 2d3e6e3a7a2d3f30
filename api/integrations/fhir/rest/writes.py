"""Create and update through the services: FHIR in, a command out, FHIR of the result back."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.domain.errors import Forbidden, Invalid, NotFound
from api.domain.programs import DeliveryMode
from api.domain.referrals import Priority, ReferralStatus, Role
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    extension_value,
    extensions,
    parse_instant,
    ref_id,
)
from api.integrations.fhir.resources.documents import (
    record_consent_form_command,
    to_fhir_document_reference,
)
from api.integrations.fhir.resources.measures import (
    record_outcome_command,
    to_fhir_questionnaire_response,
)
from api.integrations.fhir.resources.patients import register_patient_command, to_fhir_patient
from api.integrations.fhir.resources.procedures import record_procedure_command
from api.integrations.fhir.resources.referral_requests import (
    create_referral_command,
    task_kept,
)
from api.integrations.fhir.resources.referrals import to_fhir_service_request, to_fhir_task
from api.integrations.fhir.resources.sessions import (
    attendance_status,
    to_fhir_attendance_encounter,
    to_fhir_session_encounter,
)
from api.integrations.fhir.rest import directory_writes
from api.integrations.fhir.rest.consent_writes import create_consent, update_consent
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import MethodNotAllowed
from api.integrations.fhir.rest.reads import procedure_resource, task_outputs
from api.services import (
    consent_forms,
    outcomes,
    patients,
    procedures,
    referrals,
    sessions,
    tasks,
)


async def create(ctx: FhirContext, resource: Json) -> Json:
    kind = resource["resourceType"]
    uow, who = ctx.new_uow(), ctx.principal
    if kind == "Patient":
        patient = await patients.register_patient(
            uow,
            who,
            register_patient_command(resource, who.organization_id),
            idempotency_key=ctx.idempotency_key,
        )
        return to_fhir_patient(patient)
    if kind == "Consent":
        return await create_consent(ctx, resource)
    if kind == "ServiceRequest":
        command = create_referral_command(resource, who.organization_id)
        view = await referrals.create_referral(uow, who, command)
        return to_fhir_service_request(view.referral)
    if kind == "Task":
        return await _create_task(ctx, resource)
    if kind == "QuestionnaireResponse":
        measure = await outcomes.record_outcome_measure(
            uow, who, record_outcome_command(resource, who)
        )
        return to_fhir_questionnaire_response(measure)
    if kind == "Encounter":
        return await _create_encounter(ctx, resource)
    if kind == "Procedure":
        recorded = await procedures.record_procedure(
            uow, who, record_procedure_command(resource), idempotency_key=ctx.idempotency_key
        )
        return procedure_resource(recorded)
    if kind == "DocumentReference":
        form = await consent_forms.record_consent_form(
            uow,
            who,
            record_consent_form_command(resource, who),
            idempotency_key=ctx.idempotency_key,
        )
        return to_fhir_document_reference(form)
    if kind == "Location":
        return await directory_writes.create_location(ctx, resource)
    raise MethodNotAllowed(f"create is not supported for {kind}")




async def _create_task(ctx: FhirContext, resource: Json) -> Json:
    """Create the Task of a ServiceRequest the caller sent (Gravity: ServiceRequest, then Task)."""
    focus = ref_id(resource.get("focus"), "ServiceRequest", "Task.focus")
    view = await referrals.get_referral(ctx.new_uow(), ctx.principal, focus)
    if view.role is not Role.REQUESTER:
        raise Forbidden("the requester creates the referral's Task")
    kept = task_kept(resource, view.referral)
    created = await tasks.create_task(
        ctx.new_uow(), ctx.principal, tasks.CreateTask(referral_id=focus, kept=kept)
    )
    return to_fhir_task(created.referral, redacted=created.withheld is not None)


async def _create_encounter(ctx: FhirContext, resource: Json) -> Json:
    uow, who = ctx.new_uow(), ctx.principal
    if "subject" not in resource:
        command = _session_command(resource)
        return to_fhir_session_encounter(await sessions.record_session(uow, who, command))
    session_id = ref_id(resource.get("partOf"), "Encounter", "Encounter.partOf")
    based_on = resource.get("basedOn") or []
    status = attendance_status(resource)
    attendance = await sessions.record_attendance(
        uow,
        who,
        sessions.RecordAttendance(
            session_id=session_id,
            patient_id=ref_id(resource.get("subject"), "Patient", "Encounter.subject"),
            status=AttendanceStatus(status),
            referral_id=ref_id(based_on[0], "ServiceRequest", "Encounter.basedOn[0]")
            if based_on
            else None,
            note=extension_value(resource, codes.EXT_NOTE, "valueString"),
        ),
    )
    (session,) = await sessions.get_sessions(ctx.new_uow(), who, [session_id])
    if session is None:
        raise NotFound("Encounter", session_id)
    return to_fhir_attendance_encounter(attendance, session)


def _session_command(resource: Json) -> sessions.RecordSession:
    period = resource.get("period", {})
    formats = codes_in(resource.get("type"), codes.CS_SESSION_FORMAT)
    modes = codes_in(resource.get("type"), codes.CS_DELIVERY_MODE)
    if not formats or not modes:
        raise Invalid("name the session format and delivery mode", field="Encounter.type")
    program = extension_value(resource, codes.EXT_PROGRAM, "valueReference")
    return sessions.RecordSession(
        program_id=ref_id(program, "HealthcareService", "Encounter.extension"),
        format=SessionFormat(formats[0]),
        delivery_mode=DeliveryMode(modes[0]),
        starts_at=parse_instant(period.get("start", ""), "Encounter.period.start"),
        ends_at=parse_instant(period.get("end", ""), "Encounter.period.end"),
        facilitator_ids=tuple(
            ref_id(e.get("valueReference"), "PractitionerRole", "Encounter.extension")
            for e in extensions(resource, codes.EXT_FACILITATOR)
        ),
        capacity=extension_value(resource, codes.EXT_SESSION_CAPACITY, "valuePositiveInt"),
        topic=extension_value(resource, codes.EXT_TOPIC, "valueString"),
    )


# Task elements compared to find what an update changes (the rest is derived or server-set).
_IGNORED = frozenset({"resourceType", "id", "meta", "text", "lastModified", "businessStatus"})


def _changed(current: Json, incoming: Json) -> frozenset[str]:
    changed = set()
    for key in (set(current) | set(incoming)) - _IGNORED:
        if key == "extension":
            mine = extension_value(current, codes.EXT_ASSIGNED_SUPPORTER, "valueReference")
            theirs = extension_value(incoming, codes.EXT_ASSIGNED_SUPPORTER, "valueReference")
            if (mine or {}).get("reference") != (theirs or {}).get("reference"):
                changed.add("assignedSupporter")
            others = [
                e
                for e in incoming.get("extension", ())
                if e.get("url") != codes.EXT_ASSIGNED_SUPPORTER
            ]
            if others:
                changed.add("extension")
        elif key == "output":
            continue  # derived: the referral's Procedures (checked by the service)
        elif _comparable(current.get(key)) != _comparable(incoming.get(key)):
            changed.add(key)
    return frozenset(changed)


def _comparable(value: Any) -> Any:
    """References compare by target, codings by system and code (displays may differ)."""
    if isinstance(value, dict):
        if "reference" in value:
            return value["reference"]
        if "system" in value and "code" in value:
            return (value["system"], value["code"])
        return {k: _comparable(v) for k, v in value.items() if k != "display"}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


async def update_task(
    ctx: FhirContext, task_id: UUID, resource: Json, expected_version: int | None
) -> Json:
    if resource.get("id") != str(task_id):
        raise Invalid("must equal the id in the URL", field="Task.id")
    assigned = extension_value(resource, codes.EXT_ASSIGNED_SUPPORTER, "valueReference")
    try:
        status = ReferralStatus(str(resource.get("status")))
    except ValueError as error:
        raise Invalid("not a status PeerBridge referrals take", field="Task.status") from error
    try:
        priority = Priority(resource["priority"]) if "priority" in resource else None
    except ValueError as error:
        raise Invalid("must be routine, urgent, asap or stat", field="Task.priority") from error
    outputs = tuple(
        ref_id(item.get("valueReference"), "Procedure", f"Task.output[{index}].valueReference")
        for index, item in enumerate(resource.get("output", ()))
    )
    updated = await tasks.update_task(
        ctx.new_uow(),
        ctx.principal,
        tasks.UpdateTask(
            referral_id=task_id,
            status=status,
            status_reason=(resource.get("statusReason") or {}).get("text"),
            priority=priority,
            assigned_supporter_id=ref_id(assigned, "PractitionerRole", "Task.extension")
            if assigned
            else None,
            # outputs are derived: `_changed` skips them
            changes_from=lambda seen: _changed(to_fhir_task(seen), resource),
            outputs=outputs,
            expected_version=expected_version,
        ),
    )
    listed = await task_outputs(ctx, [task_id])
    return to_fhir_task(
        updated.referral,
        redacted=updated.withheld is not None,
        outputs=listed.get(task_id, ()),
    )


async def update_procedure(
    ctx: FhirContext, procedure_id: UUID, resource: Json, expected_version: int | None
) -> Json:
    """The performer that recorded a delivery corrects it (basedOn, subject, performer stay)."""
    if resource.get("id") != str(procedure_id):
        raise Invalid("must equal the id in the URL", field="Procedure.id")
    updated = await procedures.update_procedure(
        ctx.new_uow(),
        ctx.principal,
        procedure_id,
        record_procedure_command(resource),
        expected_version=expected_version,
    )
    return procedure_resource(updated)


async def update(
    ctx: FhirContext, resource_type: str, resource_id: UUID, resource: Json, expected: int | None
) -> Json:
    if resource_type == "Task":
        return await update_task(ctx, resource_id, resource, expected)
    if resource_type == "Consent":
        return await update_consent(ctx, resource_id, resource, expected)
    if resource_type == "Procedure":
        return await update_procedure(ctx, resource_id, resource, expected)
    if resource_type == "Location":
        return await directory_writes.update_location(ctx, resource_id, resource, expected)
    raise MethodNotAllowed(f"update is not supported for {resource_type}")
