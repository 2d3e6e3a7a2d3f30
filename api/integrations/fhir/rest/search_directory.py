"""Searches over the directory (no patient data): peer programs (HealthcareService) and where
they meet (Location), keyset-paginated in SQL."""

from __future__ import annotations

from api.domain.locations import LocationStatus
from api.domain.programs import ProgramKind
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.locations import to_fhir_location
from api.integrations.fhir.resources.programs import to_fhir_healthcare_service
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import BadRequest
from api.integrations.fhir.rest.search_includes import SearchResult, includes, page
from api.integrations.fhir.rest.search_parameters import (
    SearchRequest,
    ids_of,
    one_id,
    page_request,
    since,
    token_values,
)
from api.services import locations, programs
from api.services.filters import LocationFilter, ProgramFilter

_KIND_OF_TYPE = {k.value: k for k in ProgramKind} | {
    code: kind for kind, (code, _) in codes.PROGRAM_SNOMED.items()
}
_LOCATION_STATUS = "http://hl7.org/fhir/location-status"


async def program_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    lower, upper = since(request)
    types = [v.rsplit("|", 1)[-1] for v in token_values(request, "type")]
    kinds = frozenset(_KIND_OF_TYPE[t] for t in types if t in _KIND_OF_TYPE)
    if types and not kinds:
        return page([], [], None)
    listed = await programs.list_programs(
        ctx.new_uow(),
        ctx.principal,
        ProgramFilter(
            ids=frozenset(ids_of(request, "_id", "HealthcareService")),
            organization_id=one_id(request, "organization", "Organization"),
            kinds=kinds,
            updated_since=lower,
            updated_before=upper,
            location_ids=frozenset(ids_of(request, "location", "Location")),
        ),
        page_request(request),
    )
    matches = [to_fhir_healthcare_service(p) for p in listed.items]
    cursor = listed.end_cursor if listed.has_next_page else None
    return page(matches, await includes(ctx, request, matches), cursor)


def _one_string(request: SearchRequest, name: str) -> str | None:
    values = token_values(request, name)
    if len(values) > 1:
        raise BadRequest("one value only", field=name)
    return values[0] if values else None


async def location_search(ctx: FhirContext, request: SearchRequest) -> SearchResult:
    for key, _ in request.unparsed:
        if key.endswith(":exact") and key != "name:exact":
            raise BadRequest("only name takes :exact here", field=key)
    statuses = set()
    for value in token_values(request, "status"):
        given, sep, code = value.rpartition("|")
        if code in {s.value for s in LocationStatus} and (not sep or given == _LOCATION_STATUS):
            statuses.add(LocationStatus(code))
    if request.get("status") and not statuses:
        return page([], [], None)  # no location here has such a status
    lower, upper = since(request)
    listed = await locations.list_locations(
        ctx.new_uow(),
        ctx.principal,
        LocationFilter(
            ids=frozenset(ids_of(request, "_id", "Location")),
            organization_id=one_id(request, "organization", "Organization"),
            name=_one_string(request, "name"),
            name_exact=any(key == "name:exact" for key, _ in request.unparsed),
            city=_one_string(request, "address-city"),
            state=_one_string(request, "address-state"),
            postal_code=_one_string(request, "address-postalcode"),
            statuses=frozenset(statuses),
            updated_since=lower,
            updated_before=upper,
        ),
        page_request(request),
    )
    matches = [to_fhir_location(location) for location in listed.items]
    return page(matches, [], listed.end_cursor if listed.has_next_page else None)
