"""One handler for every FHIR interaction, used by the HTTP routes and by each Bundle entry."""

from __future__ import annotations

import re
from uuid import UUID

from api.domain.errors import NotFound, VersionConflict
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.rest import (
    bundles,
    conditional_create,
    reads,
    search_execute,
    subscriptions,
    writes,
)
from api.integrations.fhir.rest.bundles import Conditions, Reply
from api.integrations.fhir.rest.capability import INTERACTIONS
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import (
    BadRequest,
    MethodNotAllowed,
    PreconditionFailed,
)
from api.integrations.fhir.rest.search_parameters import parse_search
from api.integrations.fhir.rest.validation import check_resource

_IF_MATCH = re.compile(r'^(?:W/)?"(\d+)"$')


def expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    found = _IF_MATCH.match(if_match.strip())
    if found is None:
        raise BadRequest('If-Match is W/"<versionId>"', field="If-Match")
    return int(found.group(1))


def _id(kind: str, text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(kind, "?") from None


def _location(resource: Json) -> str:
    version = (resource.get("meta") or {}).get("versionId", "1")
    return f"{resource['resourceType']}/{resource['id']}/_history/{version}"


def metrics_label(method: str, path: str) -> str:
    """The request's interaction and resource type (`search Task`, `read Patient`, `batch`),
    for the request metrics: only served types and the interactions of `handle`."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "batch" if method == "POST" else "other"
    kind = parts[0] if parts[0] in INTERACTIONS else "other"
    interaction = {
        ("GET", 1): "search",
        ("GET", 2): "read",
        ("GET", 4): "vread",
        ("POST", 1): "create",
        ("PUT", 2): "update",
    }.get((method, len(parts)), "other")
    return f"{interaction} {kind}"


def _allowed(kind: str, interaction: str) -> None:
    if kind not in INTERACTIONS:
        raise BadRequest(f"this server does not serve {kind}", field="resourceType")
    if interaction not in INTERACTIONS[kind]:
        raise MethodNotAllowed(f"{interaction} is not supported for {kind}")


async def handle(
    ctx: FhirContext, method: str, url: str, body: Json | None, conditions: Conditions
) -> Reply:
    """GET read/vread/search, POST create (conditional with If-None-Exist) or Bundle, PUT
    update (If-Match); `url` is relative, with its query."""
    if_match = conditions.if_match
    path, _, _query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    if not parts:
        if method != "POST" or body is None:
            raise MethodNotAllowed("POST a transaction or batch Bundle to the base URL")
        return await _bundle(ctx, body)
    kind = parts[0]
    if kind == "Subscription":
        _allowed(kind, "read")
        return await subscriptions.handle(ctx, method, parts, _query, body)
    if method == "GET" and len(parts) == 1:
        _allowed(kind, "search-type")
        request = parse_search(kind, bundles.query_pairs(url))
        result = await search_execute.search(ctx, request)
        return Reply(200, bundles.searchset(ctx, request, result))
    if method == "GET" and len(parts) in (2, 4):
        _allowed(kind, "read" if len(parts) == 2 else "vread")
        resource = await reads.read(ctx, kind, _id(kind, parts[1]))
        if len(parts) == 4:
            if parts[2] != "_history" or resource["meta"]["versionId"] != parts[3]:
                raise NotFound(f"{kind} version", parts[3])  # only the current one is kept
        return Reply(200, resource)
    if method == "POST" and len(parts) == 1:
        _allowed(kind, "create")
        resource = check_resource(body or {}, kind)
        if conditions.if_none_exist is None:
            created = await writes.create(ctx, resource)
            return Reply(201, created, _location(created))
        made, answer = await conditional_create.create_once(
            ctx,
            kind,
            resource,
            conditions.if_none_exist,
            conditions.if_none_exist_at,
            writes.create,
        )
        return Reply(201 if made else 200, answer, _location(answer))
    if method == "PUT" and len(parts) == 2:
        _allowed(kind, "update")
        expected = expected_version(if_match)
        try:
            updated = await writes.update(
                ctx, kind, _id(kind, parts[1]), check_resource(body or {}, kind), expected
            )
        except VersionConflict as conflict:
            if expected is None:
                raise
            raise PreconditionFailed(str(conflict)) from None
        return Reply(200, updated, _location(updated))
    raise MethodNotAllowed(f"{method} {'/'.join(parts[:1] + ['{id}'] * (len(parts) > 1))}")


async def _bundle(ctx: FhirContext, body: Json) -> Reply:
    bundles.check_entry_count(ctx, body)
    bundle = check_resource(body, "Bundle")
    if bundle.get("type") == "transaction":
        return Reply(200, await bundles.transaction(ctx, bundle, handle))
    if bundle.get("type") == "batch":
        return Reply(200, await bundles.batch(ctx, bundle, handle))
    raise BadRequest("POST a transaction or batch Bundle", field="Bundle.type")
