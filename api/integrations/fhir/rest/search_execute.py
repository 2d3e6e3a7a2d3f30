"""Run a parsed `SearchRequest` through the services and resolve `_include` / `_revinclude`."""

from __future__ import annotations

from uuid import UUID

from api.domain.patients import PatientIdentifier
from api.domain.referrals import Direction, ReferralStatus
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.resources.patients import to_fhir_patient
from api.integrations.fhir.resources.supporters import (
    to_fhir_practitioner,
    to_fhir_practitioner_role,
)
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import BadRequest
from api.integrations.fhir.rest.reads import TASK_RELATIONS, read_many, referral_resource
from api.integrations.fhir.rest.search_directory import location_search, program_search
from api.integrations.fhir.rest.search_includes import SearchResult, includes, page
from api.integrations.fhir.rest.search_parameters import (
    SearchRequest,
    flag,
    ids_of,
    one_id,
    page_request,
    since,
    token_values,
)
from api.integrations.fhir.rest.search_records import (
    audit_search,
    care_search,
    consent_search,
    document_search,
    procedure_search,
)
from api.services import patients, procedures, referrals, supporters
from api.services.filters import ReferralFilter, SupporterFilter
from api.services.repositories import NO_RELATIONS

__all__ = ["SearchResult", "search"]

_SR_STATUS: dict[str, frozenset[ReferralStatus]] = {}
for _status, _sr in codes.SERVICE_REQUEST_STATUS.items():
    _SR_STATUS[_sr] = _SR_STATUS.get(_sr, frozenset()) | {_status}

_REQUEST_INTENT = "http://hl7.org/fhir/request-intent"


def _statuses(request: SearchRequest) -> frozenset[ReferralStatus]:
    wanted: set[ReferralStatus] = set()
    for value in token_values(request, "status"):
        if request.resource_type == "ServiceRequest":
            wanted |= _SR_STATUS.get(value, frozenset())
        elif value in {s.value for s in ReferralStatus}:
            wanted.add(ReferralStatus(value))
    return frozenset(wanted)


def _codes(values: tuple[str, ...], system: str) -> list[str]:
    """Bare codes, and codes given as `system|code` of the expected system."""
    found = []
    for value in values:
        given, sep, code = value.rpartition("|")
        if not sep or given == system:
            found.append(code)
    return found


def _nothing(request: SearchRequest) -> bool:
    """Token values no PeerBridge referral can have: answer an empty page, not everything."""
    intents = _codes(token_values(request, "intent"), _REQUEST_INTENT)
    if request.get("intent") and "order" not in intents:
        return True
    return bool(request.get("status")) and not _statuses(request)


def _task_codes(request: SearchRequest) -> tuple[str, ...]:
    """Task `code`: every referral Task is a `fulfill` Task; other codings are the ones its
    requester sent beside it."""
    wanted = token_values(request, "code") if request.resource_type == "Task" else ()
    if "fulfill" in _codes(wanted, codes.TASK_CODE):
        return ()
    return wanted


async def _referral_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    kind = request.resource_type
    lower, upper = since(request)
    ids = ids_of(request, "_id", kind) + ids_of(request, "focus", "ServiceRequest")
    if request.get("output"):
        outputs = ids_of(request, "output", "Procedure")
        via = await procedures.referrals_of(ctx.new_uow(), ctx.principal, outputs)
        if not via:
            return page([], [], None)
        ids += via
    if _nothing(request):
        return page([], [], None)
    categories = token_values(request, "category")
    directions = _codes(categories, codes.CS_DIRECTION)
    patient = one_id(request, "patient", "Patient") or one_id(request, "subject", "Patient")
    where = ReferralFilter(
        ids=frozenset(ids),
        statuses=_statuses(request),
        patient_id=patient,
        requester_organization_id=one_id(request, "requester", "Organization"),
        performer_organization_id=one_id(request, "performer", "Organization")
        or one_id(request, "owner", "Organization"),
        updated_since=lower,
        updated_before=upper,
        service_codes=token_values(request, "code") if kind == "ServiceRequest" else (),
        task_codes=_task_codes(request),
        categories=categories,
        category_directions=frozenset(d for d in Direction if d.value in directions),
        identifiers=token_values(request, "identifier"),
        overdue=flag(request, "overdue"),
    )
    tasks_wanted = kind == "Task" or "Task:focus" in request.revincludes
    listed = await referrals.list_referrals(
        ctx.new_uow(),
        ctx.principal,
        where,
        page_request(request),
        TASK_RELATIONS if tasks_wanted else NO_RELATIONS,
    )
    views = {v.referral.id: v for v in listed.items}
    cursor = listed.end_cursor if listed.has_next_page else None

    def as_resource(resource_type: str, referral_id: UUID) -> Json | None:
        """A Task or ServiceRequest of a referral on this page, as this read disclosed it."""
        view = views.get(referral_id)
        if view is None or resource_type not in ("Task", "ServiceRequest"):
            return None
        return referral_resource(resource_type, view)

    matches = [referral_resource(kind, v) for v in views.values()]
    return page(matches, await includes(ctx, request, matches, as_resource), cursor)


async def _by_ids(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    matches = await read_many(
        ctx, request.resource_type, ids_of(request, "_id", request.resource_type)
    )
    return page(matches, await includes(ctx, request, matches), None)


async def search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    """Answer a search with what the caller may see, newest change first where paginated."""
    kind = request.resource_type
    by_kind = {
        "ServiceRequest": _referral_search,
        "Task": _referral_search,
        "Procedure": procedure_search,
        "Consent": consent_search,
        "DocumentReference": document_search,
        "Observation": care_search,
        "QuestionnaireResponse": care_search,
        "Encounter": care_search,
        "AuditEvent": audit_search,
        "HealthcareService": program_search,
        "Location": location_search,
    }
    if kind in by_kind:
        return await by_kind[kind](ctx, request)
    if request.get("_id"):
        return await _by_ids(ctx, request)
    if kind == "Patient":
        return await _patient_search(ctx, request)
    if kind in ("Practitioner", "PractitionerRole"):
        return await _supporter_search(ctx, request)
    raise BadRequest(f"search on {kind} needs _id", field="_id")


async def _patient_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    found = request.first("identifier")
    if found is None or "|" not in found.one():
        raise BadRequest("search patients by identifier=system|value", field="identifier")
    system, _, value = found.one().partition("|")
    matches = await patients.find_patients(
        ctx.new_uow(), ctx.principal, PatientIdentifier(system, value)
    )
    return page([to_fhir_patient(patient) for patient in matches], [], None)


async def _supporter_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    practitioner = one_id(request, "practitioner", "Practitioner")
    if practitioner is not None:
        matches = await read_many(ctx, request.resource_type, [practitioner])
        return page(matches, await includes(ctx, request, matches), None)
    listed = await supporters.list_supporters(
        ctx.new_uow(),
        ctx.principal,
        SupporterFilter(organization_id=one_id(request, "organization", "Organization")),
        page_request(request),
    )
    convert = (
        to_fhir_practitioner
        if request.resource_type == "Practitioner"
        else to_fhir_practitioner_role
    )
    matches = [convert(s) for s in listed.items]
    cursor = listed.end_cursor if listed.has_next_page else None
    return page(matches, await includes(ctx, request, matches), cursor)
