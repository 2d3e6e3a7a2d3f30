"""Conditional create: `If-None-Exist: <search parameters>` on a POST, or
`Bundle.entry.request.ifNoneExist` in a transaction or batch (hl7.org/fhir/R4/http.html#ccreate).

No match: create (201). One: the existing resource (200), nothing created. More than one: 412.
Match and create run in one transaction, serialised with the organization's other conditional
creates on the same criteria (an advisory lock), so identical requests sent together create once.
Each resource type that supports it names, in one table, the search parameters its criteria
may use; the match runs through the same search as `GET <Type>?...` (what the caller may see),
except where a row says otherwise. The CapabilityStatement reads the same table.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode

from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.rest import search_execute
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import BadRequest, PreconditionFailed
from api.integrations.fhir.rest.reads import TASK_RELATIONS, referral_resource
from api.integrations.fhir.rest.search_parameters import SearchRequest, ids_of, parse_search
from api.services import idempotency, referrals
from api.services.referrals import ReferralView
from api.services.transactions import SharedTransaction

Matcher = Callable[[FhirContext, SearchRequest], Awaitable[list[Json]]]


async def _searched(ctx: FhirContext, request: SearchRequest) -> list[Json]:
    return (await search_execute.search(ctx, request)).matches


async def _created_tasks(ctx: FhirContext, request: SearchRequest) -> list[Json]:
    """A referral always has a workflow, but its Task exists once created (with the referral
    through GraphQL, or by the requester's POST after a FHIR ServiceRequest)."""
    ids = ids_of(request, "focus", "ServiceRequest")
    found = await referrals.get_referrals(ctx.new_uow(), ctx.principal, ids, TASK_RELATIONS)
    return [
        referral_resource("Task", v)
        for v in found
        if isinstance(v, ReferralView) and v.referral.task_created_at is not None
    ]


@dataclass(frozen=True)
class ConditionalCreate:
    parameters: frozenset[str]  # the search parameters criteria may use
    documentation: str
    matcher: Matcher = _searched


CONDITIONAL_CREATE: dict[str, ConditionalCreate] = {
    "ServiceRequest": ConditionalCreate(
        frozenset({"identifier"}),
        "If-None-Exist: identifier=<system>|<value> (or |<value>, <value>) among the caller's "
        "referrals",
    ),
    "Task": ConditionalCreate(
        frozenset({"focus"}),
        "If-None-Exist: focus=ServiceRequest/<id>: the referral's Task once created",
        _created_tasks,
    ),
    # Identifiers are unique per organization: another organization's patient the caller may
    # not see is neither matched nor revealed (the caller's own record is created instead).
    "Patient": ConditionalCreate(
        frozenset({"identifier"}),
        "If-None-Exist: identifier=<system>|<value> among your organization's patients and "
        "those disclosed to you",
    ),
}

_LEADING = re.compile(r"^(?:[A-Z][A-Za-z]*)?\?")


def parse_criteria(resource_type: str, criteria: str, where: str) -> SearchRequest:
    """The criteria as a search, refused (400, naming `where`) unless the table allows them."""
    allowed = CONDITIONAL_CREATE.get(resource_type)
    if allowed is None:
        raise BadRequest(f"conditional create is not supported for {resource_type}", field=where)
    text = criteria.strip()
    prefix = _LEADING.match(text)
    if prefix and prefix.group(0) not in ("?", f"{resource_type}?"):
        raise BadRequest(f"criteria for {resource_type}", field=where)
    pairs = parse_qsl(text[prefix.end() :] if prefix else text, keep_blank_values=True)
    names = ", ".join(sorted(allowed.parameters))
    if not pairs or any(name not in allowed.parameters or not value for name, value in pairs):
        raise BadRequest(f"search parameters for {resource_type}: {names}", field=where)
    try:
        request = parse_search(resource_type, pairs)
    except BadRequest as error:
        raise BadRequest("; ".join(d.message for d in error.details), field=where) from None
    return replace(request, count=2)  # enough to tell one match from several


async def create_once(
    ctx: FhirContext,
    resource_type: str,
    resource: Json,
    criteria: str,
    where: str,
    create: Callable[[FhirContext, Json], Awaitable[Json]],
) -> tuple[bool, Json]:
    """(created?, the resource): the match, or what `create` made. Matching and creating share
    one transaction, serialised with the organization's other creates on the same criteria, so
    two requests sent together never both create."""
    request = parse_criteria(resource_type, criteria, where)
    outer = ctx.new_uow()
    async with outer:
        shared = replace(ctx, new_uow=lambda: SharedTransaction(outer))
        condition = f"{resource_type}?{urlencode(sorted(request.unparsed))}"
        await idempotency.hold_condition(outer, ctx.principal, condition)
        found = await existing(shared, resource_type, criteria, where)
        result = (False, found) if found is not None else (True, await create(shared, resource))
        await outer.commit()
    return result


async def existing(ctx: FhirContext, resource_type: str, criteria: str, where: str) -> Json | None:
    """The one resource matching the criteria, None when none does; 412 when several do."""
    request = parse_criteria(resource_type, criteria, where)
    try:
        matches = await CONDITIONAL_CREATE[resource_type].matcher(ctx, request)
    except BadRequest as error:  # criteria the search refuses (e.g. an identifier without system)
        raise BadRequest("; ".join(d.message for d in error.details), field=where) from None
    if len(matches) > 1:
        raise PreconditionFailed(
            f"more than one {resource_type} matches {where}: make the criteria selective"
        )
    return matches[0] if matches else None
