"""A search's answer, and the resources `_include` / `_revinclude` add to it (read through the
same services as direct reads, so what the caller may not see is silently left out)."""

from __future__ import annotations

from collections.abc import Callable
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


# A resource this request has already read and may answer with again: the other face of a
# referral (its Task beside its ServiceRequest) comes from the same record, consent decision and
# audit row, so an include of it needs no second read.
InHand = Callable[[str, UUID], Json | None]


def _nothing_in_hand(kind: str, ident: UUID) -> Json | None:
    return None


async def includes(
    ctx: FhirContext,
    request: SearchRequest,
    matches: list[Json],
    in_hand: InHand = _nothing_in_hand,
) -> list[Json]:
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
        for resource in await _resources(ctx, kind, list(dict.fromkeys(ids)), in_hand):
            key = (resource["resourceType"], resource["id"])
            if key not in seen:
                seen.add(key)
                included.append(resource)
    return included


async def _resources(ctx: FhirContext, kind: str, ids: list[UUID], in_hand: InHand) -> list[Json]:
    """The resources the caller may see, in order: those in hand, the rest read."""
    held = {ident: found for ident in ids if (found := in_hand(kind, ident)) is not None}
    read = {r["id"]: r for r in await read_many(ctx, kind, [i for i in ids if i not in held])}
    out = [held.get(ident) or read.get(str(ident)) for ident in ids]
    return [r for r in out if r is not None]


def page(matches: list[Json], included: list[Json], cursor: str | None) -> SearchResult:
    """A page of matches: the total is given when everything fit in it."""
    return SearchResult(matches, included, cursor, len(matches) if cursor is None else None)
