"""Bundles: searchset answers, and transaction / batch requests replayed entry by entry through
the same interaction handler as single requests.

A transaction runs every entry in one database transaction (all or nothing), in FHIR's order
(POST, then PUT, then GET), creating entries after the entries their `urn:uuid` references
point at. A batch runs each entry on its own and reports each entry's outcome.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

from api.domain.errors import DomainError, Invalid, InvalidDetail, TooLarge
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.rest.context import FhirContext
from api.integrations.fhir.rest.operation_outcomes import BadRequest, operation_outcome
from api.integrations.fhir.rest.search_includes import SearchResult
from api.integrations.fhir.rest.search_parameters import SearchRequest
from api.services.transactions import SharedTransaction


@dataclass(frozen=True)
class Reply:
    status: int
    resource: Json
    location: str | None = None

    @property
    def etag(self) -> str | None:
        version = (self.resource.get("meta") or {}).get("versionId")
        return f'W/"{version}"' if version else None


@dataclass(frozen=True)
class Conditions:
    """A request's conditional headers, or a Bundle entry's `request.ifMatch` / `ifNoneExist`;
    `if_none_exist_at` names where the criteria came from (for errors)."""

    if_match: str | None = None
    if_none_exist: str | None = None
    if_none_exist_at: str = "If-None-Exist"


Handler = Callable[[FhirContext, str, str, Json | None, Conditions], Awaitable[Reply]]


def check_entry_count(ctx: FhirContext, bundle: Json) -> None:
    """Refuse a batch or transaction with more entries than this server runs in one request,
    before any entry is validated or run (a client splits it into several Bundles)."""
    entries = bundle.get("entry")
    if isinstance(entries, list) and len(entries) > ctx.max_bundle_entries:
        raise TooLarge(
            f"at most {ctx.max_bundle_entries} entries per Bundle; send the rest in another",
            field="Bundle.entry",
        )


def searchset(ctx: FhirContext, request: SearchRequest, result: SearchResult) -> Json:
    query = [(k, v) for k, v in request.unparsed if k != "_cursor"]
    self_url = f"{ctx.base_url}/{request.resource_type}"
    links = [{"relation": "self", "url": f"{self_url}?{urlencode(query)}" if query else self_url}]
    if result.next_cursor:
        next_query = [*query, ("_cursor", result.next_cursor)]
        links.append({"relation": "next", "url": f"{self_url}?{urlencode(next_query)}"})
    # Past the cap, included resources are left out and an outcome entry says so.
    included = result.included[: ctx.max_included]
    omitted = len(result.included) - len(included)
    bundle: Json = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": ctx.full_url(r["resourceType"], r["id"]),
                "resource": r,
                "search": {"mode": mode},
            }
            for rs, mode in ((result.matches, "match"), (included, "include"))
            for r in rs
        ],
    }
    if omitted:
        outcome = _includes_capped(omitted, ctx.max_included)
        bundle["entry"].append({"resource": outcome, "search": {"mode": "outcome"}})
    if result.total is not None:
        bundle["total"] = result.total
    if not bundle["entry"]:
        del bundle["entry"]
    return bundle


def _includes_capped(omitted: int, cap: int) -> Json:
    text = (
        f"{omitted} more resources matched _include/_revinclude and are not in this response "
        f"(at most {cap} are included); lower _count, or read or search them directly"
    )
    issue = {
        "severity": "warning",
        "code": "too-costly",
        "details": {"text": text},
        "expression": ["_include"],
    }
    return {"resourceType": "OperationOutcome", "issue": [issue]}


_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class _Entry:
    index: int
    method: str
    url: str
    full_url: str | None
    resource: Json | None
    if_match: str | None
    if_none_exist: str | None

    def conditions(self, assigned: dict[str, str] | None = None) -> Conditions:
        criteria = self.if_none_exist
        if criteria is not None and assigned:
            criteria = _URN.sub(lambda m: assigned.get(m.group(0), m.group(0)), criteria)
        return Conditions(
            self.if_match, criteria, f"Bundle.entry[{self.index}].request.ifNoneExist"
        )

    def urns(self) -> set[str]:
        """The entries it must follow: those its resource or criteria reference by urn:uuid."""
        return _urns(self.resource) | set(_URN.findall(self.if_none_exist or ""))


_URN = re.compile(r"urn:uuid:[0-9a-fA-F-]{32,36}")


def _entries(bundle: Json) -> list[_Entry]:
    out = []
    problems = []
    for index, entry in enumerate(bundle.get("entry", ())):
        request = entry.get("request") or {}
        method, url = request.get("method"), request.get("url")
        if method not in ("GET", "POST", "PUT") or not isinstance(url, str):
            problems.append(
                InvalidDetail(
                    f"Bundle.entry[{index}].request", "needs method GET, POST or PUT and a url"
                )
            )
            continue
        if_none_exist = request.get("ifNoneExist")
        if if_none_exist is not None and method != "POST":
            problems.append(
                InvalidDetail(f"Bundle.entry[{index}].request.ifNoneExist", "only a POST creates")
            )
            continue
        out.append(
            _Entry(
                index,
                method,
                url.lstrip("/"),
                entry.get("fullUrl"),
                entry.get("resource"),
                request.get("ifMatch"),
                if_none_exist,
            )
        )
    if problems:
        raise BadRequest(problems)
    return out


def _urns(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = (
            {value["reference"]}
            if str(value.get("reference", "")).startswith("urn:uuid:")
            else set()
        )
        return found.union(*(_urns(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_urns(v) for v in value))
    return set()


def _resolve(value: Any, assigned: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _resolve(v, assigned) for k, v in value.items()}
        reference = out.get("reference")
        if isinstance(reference, str) and reference in assigned:
            out["reference"] = assigned[reference]
        return out
    if isinstance(value, list):
        return [_resolve(v, assigned) for v in value]
    return value


def _prefix(error: DomainError, index: int) -> DomainError:
    """Point the error's expression into the Bundle entry that caused it."""
    if isinstance(error, Invalid):
        details = [
            InvalidDetail(
                d.field
                if d.field.startswith("Bundle.")
                else f"Bundle.entry[{index}].resource.{d.field.partition('.')[2]}"
                if "." in d.field
                else f"Bundle.entry[{index}]",
                d.message,
            )
            for d in error.details
        ]
        again = type(error)(details)
        return again
    return error


async def transaction(ctx: FhirContext, bundle: Json, handle: Handler) -> Json:
    """All entries or none: one database transaction, urn:uuid references resolved."""
    entries = sorted(_entries(bundle), key=lambda e: (_ORDER[e.method], e.index))
    known = {e.full_url for e in entries if e.full_url and e.full_url.startswith("urn:uuid:")}
    for entry in entries:
        unknown = entry.urns() - known
        if unknown:
            raise BadRequest(
                "references a urn:uuid no entry of this Bundle has",
                field=f"Bundle.entry[{entry.index}]",
            )
    outer = ctx.new_uow()
    replies: dict[int, Reply] = {}
    async with outer:
        shared = replace(ctx, new_uow=lambda: SharedTransaction(outer), idempotency_key=None)
        assigned: dict[str, str] = {}
        pending = list(entries)
        while pending:
            ready = [e for e in pending if e.urns() <= set(assigned)]
            if not ready:
                raise BadRequest(
                    "the Bundle's urn:uuid references form a cycle", field="Bundle.entry"
                )
            entry = ready[0]
            pending.remove(entry)
            resource = _resolve(entry.resource, assigned) if entry.resource else None
            try:
                reply = await handle(
                    shared,
                    entry.method,
                    _resolve_url(entry.url, assigned),
                    resource,
                    entry.conditions(assigned),
                )
            except DomainError as error:
                raise _prefix(error, entry.index) from None
            replies[entry.index] = reply
            if entry.full_url and entry.method == "POST" and reply.location:
                assigned[entry.full_url] = "/".join(reply.location.split("/")[:2])
        await outer.commit()
    return _response_bundle("transaction-response", [replies[i] for i in sorted(replies)])


def _resolve_url(url: str, assigned: dict[str, str]) -> str:
    """`Task/urn:uuid:...` → `Task/<id>` for an entry created earlier in the Bundle."""
    _kind, _, rest = url.partition("/")
    ident, sep, tail = rest.partition("/")
    return assigned[ident] + sep + tail if ident in assigned else url


async def batch(ctx: FhirContext, bundle: Json, handle: Handler) -> Json:
    """Each entry on its own; a failure answers that entry with its OperationOutcome."""
    ctx = replace(ctx, idempotency_key=None)
    replies: list[Reply] = []
    for entry in _entries(bundle):
        try:
            replies.append(
                await handle(ctx, entry.method, entry.url, entry.resource, entry.conditions())
            )
        except DomainError as error:
            status, outcome = operation_outcome(
                error, resource_type=entry.url.split("/")[0].split("?")[0]
            )
            replies.append(Reply(status, outcome))
    return _response_bundle("batch-response", replies)


def _response_bundle(kind: str, replies: Sequence[Reply]) -> Json:
    entries = []
    for reply in replies:
        response: Json = {"status": f"{reply.status} {HTTPStatus(reply.status).phrase}"}
        if reply.location:
            response["location"] = reply.location
        if reply.etag:
            response["etag"] = reply.etag
        last = (reply.resource.get("meta") or {}).get("lastUpdated")
        if last and reply.resource.get("resourceType") != "OperationOutcome":
            response["lastModified"] = last
        entry: Json = {"response": response}
        if reply.resource.get("resourceType") == "OperationOutcome":
            response["outcome"] = reply.resource
        else:
            entry["resource"] = reply.resource
        entries.append(entry)
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": kind, "entry": entries}


def query_pairs(url: str) -> list[tuple[str, str]]:
    return parse_qsl(url.partition("?")[2], keep_blank_values=True)
