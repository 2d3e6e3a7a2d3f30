"""A search's answer, and the resources `_include` / `_revinclude` add to it (read through the
same services as direct reads, so what the caller may not see is silently left out)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from api.domain.errors import Invalid
from api.integrations.fhir.resources.datatypes import Json, parse_ref
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.reads import READABLE, read_many
from api.integrations.fhir.rest.search_parameters import SearchRequest


@dataclass(frozen=True)
class SearchResult:
    matches: list[Json]
    included: list[Json]
    next_cursor: str | None
    total: int | None  # only when cheap: everything fit in one page


# _include value → the element(s) of the matched resource whose references to fetch.
INCLUDE_PATHS: dict[str, tuple[str, ...]] = {
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
    "HealthcareService:location": ("location",),
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


def _ours(reference: Json) -> tuple[str, UUID] | None:
    """The record a reference points at when it is one of ours (`Type/<id>` of a type this
    server reads); None for what a client keeps pointing elsewhere (its own practitioner, a
    Condition in its EHR), which an include leaves out."""
    try:
        kind, ident = parse_ref(reference, "reference")
    except Invalid:
        return None
    return (kind, ident) if kind in READABLE else None


async def includes(ctx: FhirContext, request: SearchRequest, matches: list[Json]) -> list[Json]:
    wanted: dict[str, list[UUID]] = {}
    for include in request.includes:
        for resource in matches:
            for path in INCLUDE_PATHS[include]:
                for reference in _references(resource, path):
                    found = _ours(reference)
                    if found is not None:
                        wanted.setdefault(found[0], []).append(found[1])
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


def page(matches: list[Json], included: list[Json], cursor: str | None) -> SearchResult:
    """A page of matches: the total is given when everything fit in it."""
    return SearchResult(matches, included, cursor, len(matches) if cursor is None else None)
