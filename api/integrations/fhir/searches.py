"""Run a parsed `SearchRequest` through the services and resolve `_include` / `_revinclude`."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from api.domain.errors import DomainError
from api.domain.patients import PatientIdentifier
from api.domain.programs import ProgramKind
from api.domain.referrals import Direction, Referral, ReferralStatus
from api.integrations.fhir import codes
from api.integrations.fhir.consents import to_fhir_consent
from api.integrations.fhir.context import FhirContext
from api.integrations.fhir.datatypes import Json, parse_ref
from api.integrations.fhir.measures import to_fhir_observation, to_fhir_questionnaire_response
from api.integrations.fhir.outcomes import BadRequest
from api.integrations.fhir.patients import to_fhir_patient
from api.integrations.fhir.programs import to_fhir_healthcare_service
from api.integrations.fhir.reads import delivered, read_many, referral_resource
from api.integrations.fhir.search import SearchRequest, reference_id, since
from api.integrations.fhir.sessions import to_fhir_attendance_encounter
from api.integrations.fhir.supporters import to_fhir_practitioner, to_fhir_practitioner_role
from api.services import consents, outcomes, patients, programs, referrals, sessions, supporters
from api.services.filters import ProgramFilter, ReferralFilter, SupporterFilter
from api.services.pagination import PageRequest


@dataclass(frozen=True)
class SearchResult:
    matches: list[Json]
    included: list[Json]
    next_cursor: str | None
    total: int | None  # only when cheap: everything fit in one page


_SR_STATUS: dict[str, frozenset[ReferralStatus]] = {}
for _status, _sr in codes.SERVICE_REQUEST_STATUS.items():
    _SR_STATUS[_sr] = _SR_STATUS.get(_sr, frozenset()) | {_status}


def _ids(request: SearchRequest, name: str, resource_type: str) -> list[UUID]:
    return [reference_id(v, resource_type, name) for f in request.get(name) for v in f.values]


def _one_id(request: SearchRequest, name: str, resource_type: str) -> UUID | None:
    ids = _ids(request, name, resource_type)
    if len(ids) > 1:
        raise BadRequest("one value only", field=name)
    return ids[0] if ids else None


def _statuses(request: SearchRequest) -> frozenset[ReferralStatus]:
    wanted: set[ReferralStatus] = set()
    for f in request.get("status"):
        for value in f.values:
            if request.resource_type == "ServiceRequest":
                wanted |= _SR_STATUS.get(value, frozenset())
            elif request.resource_type == "Procedure":
                wanted |= {ReferralStatus.COMPLETED} if value == "completed" else set()
            elif value in {s.value for s in ReferralStatus}:
                wanted.add(ReferralStatus(value))
    return frozenset(wanted)


def _nothing(request: SearchRequest) -> bool:
    """Token values no PeerBridge referral can have: answer an empty page, not everything."""
    checks = {
        "intent": {"order"},
        "code": {"fulfill", f"{codes.TASK_CODE}|fulfill"},
        "category": {d.value for d in Direction}
        | {f"{codes.CS_DIRECTION}|{d.value}" for d in Direction},
    }
    for name, allowed in checks.items():
        if request.resource_type == "Task" or name != "code":
            for f in request.get(name):
                if not set(f.values) & allowed:
                    return True
    return bool(request.get("status")) and not _statuses(request)


async def _referral_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    kind = request.resource_type
    lower, upper = since(request)
    ids = _ids(request, "_id", kind)
    for name in ("focus", "based-on", "output"):
        ids += _ids(
            request,
            name,
            {"focus": "ServiceRequest", "based-on": "ServiceRequest"}.get(name, "Procedure"),
        )
    statuses = _statuses(request)
    if kind == "Procedure":
        statuses = frozenset({ReferralStatus.COMPLETED}) & (
            statuses or frozenset({ReferralStatus.COMPLETED})
        )
    if kind == "Task" and request.get("output"):
        statuses = frozenset({ReferralStatus.COMPLETED})
    if _nothing(request) or (request.get("status") and not statuses):
        return SearchResult([], [], None, 0)
    categories = [v.rsplit("|", 1)[-1] for f in request.get("category") for v in f.values]
    patient = _one_id(request, "patient", "Patient") or _one_id(request, "subject", "Patient")
    where = ReferralFilter(
        directions=frozenset(Direction(c) for c in categories if c in {d.value for d in Direction}),
        statuses=statuses,
        patient_id=patient,
        requester_organization_id=_one_id(request, "requester", "Organization"),
        performer_organization_id=_one_id(request, "performer", "Organization")
        or _one_id(request, "owner", "Organization"),
        updated_since=lower,
        updated_before=upper,
    )
    if ids:
        found = await referrals.get_referrals(ctx.new_uow(), ctx.principal, ids)
        views = [v for v in found if not isinstance(v, DomainError) and _matches(v.referral, where)]
        cursor = None
    else:
        page = await referrals.list_referrals(
            ctx.new_uow(), ctx.principal, where, PageRequest.of(request.count, request.cursor)
        )
        views = list(page.items)
        cursor = page.end_cursor if page.has_next_page else None
    attendance = await delivered(ctx, views) if kind == "Procedure" else []
    matches = [r for v in views if (r := referral_resource(kind, v, attendance)) is not None]
    included = await _includes(ctx, request, matches)
    return SearchResult(matches, included, cursor, len(matches) if cursor is None else None)


def _matches(referral: Referral, where: ReferralFilter) -> bool:
    return (
        (not where.statuses or referral.status in where.statuses)
        and (where.patient_id is None or referral.patient_id == where.patient_id)
        and (
            where.requester_organization_id is None
            or referral.requester_organization_id == where.requester_organization_id
        )
        and (
            where.performer_organization_id is None
            or referral.performer_organization_id == where.performer_organization_id
        )
        and (where.updated_since is None or referral.updated_at > where.updated_since)
        and (where.updated_before is None or referral.updated_at < where.updated_before)
        and (not where.directions or referral.direction in where.directions)
    )


# _include value → the element(s) of the matched resource whose references to fetch.
_INCLUDE_PATHS: dict[str, tuple[str, ...]] = {
    "ServiceRequest:patient": ("subject",),
    "ServiceRequest:subject": ("subject",),
    "ServiceRequest:supporting-info": ("supportingInfo",),
    "ServiceRequest:requester": ("requester",),
    "ServiceRequest:performer": ("performer",),
    "Task:focus": ("focus",),
    "Task:output": ("output.valueReference",),
    "Task:patient": ("for",),
    "Task:owner": ("owner",),
    "Consent:source-reference": ("sourceReference",),
    "PractitionerRole:organization": ("organization",),
    "PractitionerRole:practitioner": ("practitioner",),
}


def _references(resource: Json, path: str) -> list[Json]:
    head, _, rest = path.partition(".")
    value = resource.get(head)
    items = value if isinstance(value, list) else [value] if value else []
    if rest:
        return [r for item in items for r in _references(item, rest)]
    return [item for item in items if isinstance(item, dict) and "reference" in item]


async def _includes(ctx: FhirContext, request: SearchRequest, matches: list[Json]) -> list[Json]:
    wanted: dict[str, list[UUID]] = {}
    for include in request.includes:
        for resource in matches:
            for path in _INCLUDE_PATHS[include]:
                for reference in _references(resource, path):
                    kind, ident = parse_ref(reference, include)
                    wanted.setdefault(kind, []).append(ident)
    if "Task:focus" in request.revincludes:
        wanted.setdefault("Task", []).extend(UUID(r["id"]) for r in matches)
    seen = {(r["resourceType"], r["id"]) for r in matches}
    included: list[Json] = []
    for kind, ids in wanted.items():
        for resource in await read_many(ctx, kind, ids):
            key = (resource["resourceType"], resource["id"])
            if key not in seen:
                seen.add(key)
                included.append(resource)
    return included


async def _by_ids(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    ids = _ids(request, "_id", request.resource_type)
    matches = await read_many(ctx, request.resource_type, ids)
    return SearchResult(matches, await _includes(ctx, request, matches), None, len(matches))


async def search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    """Answer a search with what the caller may see, newest change first where paginated."""
    kind = request.resource_type
    if kind in ("ServiceRequest", "Task", "Procedure"):
        return await _referral_search(ctx, request)
    if request.get("_id"):
        return await _by_ids(ctx, request)
    if kind == "Patient":
        return await _patient_search(ctx, request)
    if kind == "Consent":
        return await _consent_search(ctx, request)
    if kind == "HealthcareService":
        return await _program_search(ctx, request)
    if kind in ("Practitioner", "PractitionerRole"):
        return await _supporter_search(ctx, request)
    if kind in ("Observation", "QuestionnaireResponse", "Encounter"):
        return await _care_search(ctx, request)
    raise BadRequest(f"search on {kind} needs _id", field="_id")


async def _patient_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    found = request.first("identifier")
    if found is None or "|" not in found.one():
        raise BadRequest("search patients by identifier=system|value", field="identifier")
    system, _, value = found.one().partition("|")
    patient = await patients.find_patient(
        ctx.new_uow(), ctx.principal, PatientIdentifier(system, value)
    )
    matches = [to_fhir_patient(patient)] if patient else []
    return SearchResult(matches, [], None, len(matches))


async def _consent_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    patient = _one_id(request, "patient", "Patient")
    if patient is None:
        raise BadRequest("search consents by patient", field="patient")
    found = await consents.list_consents(ctx.new_uow(), ctx.principal, patient)
    statuses = {v for f in request.get("status") for v in f.values}
    matches = [
        resource
        for consent in found
        if (resource := to_fhir_consent(consent, now=ctx.now))["status"]
        in (statuses or {resource["status"]})
    ]
    return SearchResult(matches, await _includes(ctx, request, matches), None, len(matches))


_KIND_OF_TYPE = {k.value: k for k in ProgramKind} | {
    code: kind for kind, (code, _) in codes.PROGRAM_SNOMED.items()
}


async def _program_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    lower, _upper = since(request)
    types = [v.rsplit("|", 1)[-1] for f in request.get("type") for v in f.values]
    kinds = frozenset(_KIND_OF_TYPE[t] for t in types if t in _KIND_OF_TYPE)
    if types and not kinds:
        return SearchResult([], [], None, 0)
    page = await programs.list_programs(
        ctx.new_uow(),
        ctx.principal,
        ProgramFilter(
            organization_id=_one_id(request, "organization", "Organization"),
            kinds=kinds,
            updated_since=lower,
        ),
        PageRequest.of(request.count, request.cursor),
    )
    matches = [to_fhir_healthcare_service(p) for p in page.items]
    cursor = page.end_cursor if page.has_next_page else None
    return SearchResult(matches, [], cursor, len(matches) if cursor is None else None)


async def _supporter_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    practitioner = _one_id(request, "practitioner", "Practitioner")
    if practitioner is not None:
        matches = await read_many(ctx, request.resource_type, [practitioner])
        return SearchResult(matches, await _includes(ctx, request, matches), None, len(matches))
    page = await supporters.list_supporters(
        ctx.new_uow(),
        ctx.principal,
        SupporterFilter(organization_id=_one_id(request, "organization", "Organization")),
        PageRequest.of(request.count, request.cursor),
    )
    convert = (
        to_fhir_practitioner
        if request.resource_type == "Practitioner"
        else to_fhir_practitioner_role
    )
    matches = [convert(s) for s in page.items]
    cursor = page.end_cursor if page.has_next_page else None
    included = await _includes(ctx, request, matches)
    return SearchResult(matches, included, cursor, len(matches) if cursor is None else None)


async def _care_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    patient = _one_id(request, "patient", "Patient")
    if patient is None:
        raise BadRequest(f"search {request.resource_type} by patient", field="patient")
    if request.resource_type == "Encounter":
        (rows,) = await sessions.attendance_for_patients(ctx.new_uow(), ctx.principal, [patient])
        found = await sessions.get_sessions(
            ctx.new_uow(), ctx.principal, sorted({a.session_id for a in rows})
        )
        by_id = {s.id: s for s in found if s is not None}
        matches = [
            to_fhir_attendance_encounter(a, by_id[a.session_id])
            for a in rows
            if a.session_id in by_id
        ]
        return SearchResult(matches, [], None, len(matches))
    (measures,) = await outcomes.outcomes_for_patients(ctx.new_uow(), ctx.principal, [patient])
    if request.resource_type == "QuestionnaireResponse":
        matches = [to_fhir_questionnaire_response(m) for m in measures]
    else:
        wanted = {v.rsplit("|", 1)[-1] for f in request.get("code") for v in f.values}
        matches = [
            r
            for m in measures
            if (r := to_fhir_observation(m))["code"]["coding"][0]["code"]
            in (wanted or {r["code"]["coding"][0]["code"]})
        ]
    return SearchResult(matches, [], None, len(matches))
