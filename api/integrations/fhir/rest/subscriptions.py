"""Subscription at /fhir: create, read, search (the caller's own), delete, and `$status`."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl
from uuid import UUID

from api.domain.deliveries import NotificationKind
from api.domain.errors import NotFound
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.resources.subscriptions import (
    from_fhir_subscription,
    status_parameters,
    to_fhir_subscription,
)
from api.integrations.fhir.rest.bundles import Reply
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import BadRequest, MethodNotAllowed
from api.integrations.fhir.rest.validation import check_resource
from api.services import subscriptions

_MAX_COUNT = 100


def _id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound("Subscription", "?") from None


async def handle(
    ctx: FhirContext, method: str, parts: list[str], query: str, body: Json | None
) -> Reply:
    if method == "POST" and len(parts) == 1:
        return await _create(ctx, body or {})
    if method == "GET" and len(parts) == 1:
        return await _search(ctx, query)
    if method == "GET" and len(parts) == 2:
        found = await subscriptions.get_subscription(ctx.new_uow(), ctx.principal, _id(parts[1]))
        return Reply(200, to_fhir_subscription(found))
    if method == "GET" and len(parts) == 3 and parts[2] == "$status":
        found = await subscriptions.get_subscription(ctx.new_uow(), ctx.principal, _id(parts[1]))
        status = status_parameters(ctx.base_url, found, NotificationKind.QUERY_STATUS)
        return Reply(200, _searchset(ctx, [status], "Subscription"))
    if method == "DELETE" and len(parts) == 2:
        await subscriptions.delete_subscription(ctx.new_uow(), ctx.principal, _id(parts[1]))
        return Reply(200, _deleted())
    raise MethodNotAllowed(f"{method} {'/'.join(parts[:1] + ['{id}'] * (len(parts) > 1))}")


async def _create(ctx: FhirContext, body: Json) -> Reply:
    if ctx.secrets_key is None:
        raise MethodNotAllowed("this server cannot keep subscription secrets")
    command = from_fhir_subscription(check_resource(body, "Subscription"))
    created, secret = await subscriptions.create_subscription(
        ctx.new_uow(),
        ctx.principal,
        command,
        ctx.endpoint_policy,
        ctx.secrets_key.seal,
        ctx.secrets_key.kek_id,
    )
    resource = to_fhir_subscription(created, secret)
    return Reply(201, resource, f"Subscription/{created.id}/_history/{created.version}")


async def _search(ctx: FhirContext, query: str) -> Reply:
    count = _MAX_COUNT
    after: UUID | None = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "_count":
            if not value.isascii() or not value.isdigit() or len(value) > 6:
                raise BadRequest("_count is a whole number", field="_count")
            count = max(1, min(int(value), _MAX_COUNT))
        elif name == "_cursor":
            try:
                after = UUID(value)
            except ValueError:
                raise BadRequest("not a cursor this server gave", field="_cursor") from None
        else:
            raise BadRequest(
                "Subscription search takes _count only (it lists your organization's)",
                field=name,
            )
    found = await subscriptions.list_subscriptions(ctx.new_uow(), ctx.principal, after, count)
    bundle = _searchset(ctx, [to_fhir_subscription(s) for s in found], "Subscription")
    if len(found) == count:
        del bundle["total"]  # more may follow
        bundle["link"].append(
            {
                "relation": "next",
                "url": f"{ctx.base_url}/Subscription?_count={count}&_cursor={found[-1].id}",
            }
        )
    return Reply(200, bundle)


def _searchset(ctx: FhirContext, resources: list[Json], resource_type: str) -> Json:
    bundle: Json = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "link": [{"relation": "self", "url": f"{ctx.base_url}/{resource_type}"}],
        "total": len(resources),
        "entry": [
            {
                "fullUrl": (
                    ctx.full_url(r["resourceType"], r["id"])
                    if r["resourceType"] == resource_type
                    else f"urn:uuid:{r['id']}"
                ),
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }
    if not bundle["entry"]:
        del bundle["entry"]
    return bundle


def _deleted() -> Json:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": "deleted"}],
    }
