"""Searches over a patient's records (consents and their forms, deliveries, outcome measures,
attendance, the audit trail), through the same services as reads.

Most answer from one patient's records and filter in memory on the mapped resources
(`_ELEMENTS`); Procedure search runs in SQL over every referral the caller is party to.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from api.domain.errors import Invalid
from api.domain.procedures import ProcedureStatus
from api.integrations.fhir.resources.audit import to_fhir_audit_event
from api.integrations.fhir.resources.consents import to_fhir_consent
from api.integrations.fhir.resources.datatypes import Json, parse_instant
from api.integrations.fhir.resources.documents import to_fhir_document_reference
from api.integrations.fhir.resources.measures import (
    to_fhir_observation,
    to_fhir_questionnaire_response,
)
from api.integrations.fhir.resources.sessions import to_fhir_attendance_encounter
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import BadRequest
from api.integrations.fhir.rest.reads import procedure_resource, read_many
from api.integrations.fhir.rest.search_includes import SearchResult, includes, page
from api.integrations.fhir.rest.search_parameters import (
    Op,
    SearchRequest,
    ids_of,
    one_id,
    page_request,
    search_instant,
    since,
    token_values,
)
from api.services import audit_trail, consent_forms, consents, outcomes, procedures, sessions
from api.services.filters import ProcedureFilter
from api.services.pagination import Keyset

# (resource type, parameter) → the element of the mapped resource a token or reference
# parameter matches, for the searches answered in memory.
_ELEMENTS: dict[tuple[str, str], str] = {
    ("Consent", "patient"): "patient",
    ("Consent", "status"): "status",
    ("Consent", "source-reference"): "sourceReference",
    ("DocumentReference", "patient"): "subject",
    ("Observation", "patient"): "subject",
    ("Observation", "category"): "category",
    ("Observation", "status"): "status",
    ("Observation", "code"): "code",
    ("QuestionnaireResponse", "patient"): "subject",
    ("QuestionnaireResponse", "author"): "author",
    ("QuestionnaireResponse", "questionnaire"): "questionnaire",
    ("QuestionnaireResponse", "status"): "status",
    ("Encounter", "patient"): "subject",
    ("AuditEvent", "patient"): "entity",
}


def _tokens(value: Any) -> set[str]:
    """What a token or reference search value may equal: `code`, `system|code`, a reference
    as `Type/id` or `id`, a plain code or canonical URL."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return set().union(*(_tokens(v) for v in value))
    if not isinstance(value, dict):
        return set()
    if "reference" in value:
        return {value["reference"], value["reference"].rsplit("/", 1)[-1]}
    if "code" in value:
        return {value["code"], f"{value.get('system', '')}|{value['code']}"}
    return set().union(*(_tokens(v) for k, v in value.items() if k not in ("text", "display")))


def _kept(request: SearchRequest, resource: Json) -> bool:
    for (kind, name), element in _ELEMENTS.items():
        if kind == request.resource_type:
            for f in request.get(name):
                if not _tokens(resource.get(element)) & set(f.values):
                    return False
    lower, upper = since(request)
    if lower or upper:
        stamp = parse_instant(resource["meta"]["lastUpdated"], "meta.lastUpdated")
        return (lower is None or stamp > lower) and (upper is None or stamp < upper)
    return True


def matching(request: SearchRequest, resources: list[Json]) -> list[Json]:
    return [r for r in resources if _kept(request, r)]


async def consent_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    ids = ids_of(request, "_id", "Consent")
    patient = one_id(request, "patient", "Patient")
    form = one_id(request, "source-reference", "DocumentReference")
    uow, who = ctx.new_uow(), ctx.principal
    if ids:
        found = await read_many(ctx, "Consent", ids)
    elif form is not None:
        cited = await consents.consents_citing_form(uow, who, form)
        found = [to_fhir_consent(c, now=ctx.now) for c in cited]
    elif patient is not None:
        listed = await consents.list_consents(uow, who, patient)
        found = [to_fhir_consent(c, now=ctx.now) for c in listed]
    else:
        raise BadRequest("search consents by patient, source-reference or _id", field="patient")
    matches = matching(request, found)
    return page(matches, await includes(ctx, request, matches), None)


async def document_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    ids = ids_of(request, "_id", "DocumentReference")
    patient = one_id(request, "patient", "Patient")
    if ids:
        found = await read_many(ctx, "DocumentReference", ids)
    elif patient is not None:
        forms = await consent_forms.consent_forms_of_patient(ctx.new_uow(), ctx.principal, patient)
        found = [to_fhir_document_reference(f) for f in forms]
    else:
        raise BadRequest("search consent forms by patient or _id", field="patient")
    return page(matching(request, found), [], None)


async def care_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    """Observation, QuestionnaireResponse and attendance Encounter: by patient or _id."""
    kind = request.resource_type
    ids = ids_of(request, "_id", kind)
    patient = one_id(request, "patient", "Patient")
    uow, who = ctx.new_uow(), ctx.principal
    if ids:
        found = await read_many(ctx, kind, ids)
    elif patient is None:
        raise BadRequest(f"search {kind} by patient or _id", field="patient")
    elif kind == "Encounter":
        (rows,) = await sessions.attendance_for_patients(uow, who, [patient])
        held = await sessions.get_sessions(uow, who, sorted({a.session_id for a in rows}))
        by_id = {s.id: s for s in held if s is not None}
        found = [
            to_fhir_attendance_encounter(a, by_id[a.session_id])
            for a in rows
            if a.session_id in by_id
        ]
    else:
        (measures,) = await outcomes.outcomes_for_patients(uow, who, [patient])
        convert = (
            to_fhir_questionnaire_response
            if kind == "QuestionnaireResponse"
            else to_fhir_observation
        )
        found = [convert(m) for m in measures]
    return page(matching(request, found), [], None)


async def audit_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    """The patient's audit trail, newest first, keyset-paginated."""
    ids = ids_of(request, "_id", "AuditEvent")
    patient = one_id(request, "patient", "Patient")
    if ids:
        return page(matching(request, await read_many(ctx, "AuditEvent", ids)), [], None)
    if patient is None:
        raise BadRequest("search the audit trail by patient or _id", field="patient")
    try:
        after = Keyset.decode(request.cursor) if request.cursor else None
    except Invalid as error:
        raise BadRequest("not a cursor this server issued", field="_cursor") from error
    events = await audit_trail.list_audit_events(
        ctx.new_uow(), ctx.principal, patient, limit=request.count, after=after
    )
    cursor = (
        Keyset(events[-1].recorded_at, events[-1].id).encode()
        if len(events) == request.count
        else None
    )
    return page([to_fhir_audit_event(e) for e in events], [], cursor)


def _next_instant(value: str) -> datetime:
    """The first instant after the value's precision (a day, or the instant itself)."""
    stamp = search_instant(value, "date")
    return stamp + (timedelta(days=1) if len(value) == 10 else timedelta(microseconds=1))


def _performed(request: SearchRequest) -> tuple[datetime | None, datetime | None]:
    """`date` as bounds on the performed period: (ends at or after, starts before)."""
    ends_from: datetime | None = None
    starts_before: datetime | None = None
    for f in request.get("date"):
        value = f.one()
        low = search_instant(value, "date") if f.op in (Op.EQ, Op.GE) else None
        low = _next_instant(value) if f.op is Op.GT else low
        high = _next_instant(value) if f.op in (Op.EQ, Op.LE) else None
        high = search_instant(value, "date") if f.op is Op.LT else high
        if low is not None:
            ends_from = max(low, ends_from) if ends_from else low
        if high is not None:
            starts_before = min(high, starts_before) if starts_before else high
    return ends_from, starts_before


async def procedure_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    wanted = token_values(request, "status")
    known = {s.value for s in ProcedureStatus}
    statuses = frozenset(ProcedureStatus(v) for v in wanted if v in known)
    if wanted and not statuses:
        return page([], [], None)  # no delivery here has such a status
    lower, upper = since(request)
    ends_from, starts_before = _performed(request)
    where = ProcedureFilter(
        ids=frozenset(ids_of(request, "_id", "Procedure")),
        referral_ids=frozenset(ids_of(request, "based-on", "ServiceRequest")),
        patient_id=one_id(request, "patient", "Patient"),
        performer_organization_id=one_id(request, "performer", "Organization"),
        statuses=statuses,
        categories=token_values(request, "category"),
        codes=token_values(request, "code"),
        updated_since=lower,
        updated_before=upper,
        performed_from=ends_from,
        performed_before=starts_before,
    )
    found = await procedures.search_procedures(
        ctx.new_uow(), ctx.principal, where, page_request(request)
    )
    matches = [procedure_resource(v) for v in found.items]
    cursor = found.end_cursor if found.has_next_page else None
    return page(matches, await includes(ctx, request, matches), cursor)
