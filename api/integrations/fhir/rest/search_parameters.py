"""FHIR search parsed once into a `SearchRequest`; the supported parameters live in one table
that the CapabilityStatement also reads, so it states exactly what works.

Unknown parameters are refused (400) rather than silently ignored: a clinic that filters on a
parameter we do not support must not receive an unfiltered list of referrals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from api.domain.errors import Invalid, InvalidDetail
from api.input_guard import check_parameters
from api.integrations.fhir.resources.codes import BASE
from api.integrations.fhir.resources.datatypes import parse_instant
from api.integrations.fhir.rest.operation_outcomes import BadRequest
from api.services.pagination import MAX_PAGE_SIZE, Order, PageRequest

DEFAULT_COUNT = 20


class Op(StrEnum):
    """Prefixes (dates) and the equality of tokens and references."""

    EQ = "eq"
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"


class Kind(StrEnum):
    TOKEN = "token"
    REFERENCE = "reference"
    DATE = "date"
    STRING = "string"


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: Kind
    documentation: str
    definition: str | None = None  # PeerBridge's own SearchParameter (canonical URL)


def _p(name: str, kind: Kind, documentation: str) -> SearchParam:
    return SearchParam(name, kind, documentation)


_ID = _p("_id", Kind.TOKEN, "Logical id")
_UPDATED = _p("_lastUpdated", Kind.DATE, "gt/ge/lt/le on meta.lastUpdated")
_PATIENT = _p("patient", Kind.REFERENCE, "Patient/<id>")

# resource type → supported search parameters (besides _count, _cursor, _include, _revinclude).
SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "ServiceRequest": (
        _ID,
        _UPDATED,
        _PATIENT,
        _p("subject", Kind.REFERENCE, "Patient/<id>"),
        _p("status", Kind.TOKEN, "active | on-hold | completed | revoked"),
        _p("intent", Kind.TOKEN, "order"),
        _p(
            "category",
            Kind.TOKEN,
            "system|code or code of any category coding sent; a ServiceRequest sent without "
            "one has the category of its direction (clinic_to_peer | peer_to_clinic)",
        ),
        _p("code", Kind.TOKEN, "system|code or code of the service ordered (SNOMED CT)"),
        _p("identifier", Kind.TOKEN, "system|value, |value (no system) or value"),
        _p("requester", Kind.REFERENCE, "Organization/<id>: the requesting organization"),
        _p("performer", Kind.REFERENCE, "Organization/<id>"),
    ),
    "Task": (
        _ID,
        _UPDATED,
        _PATIENT,
        _p("status", Kind.TOKEN, "Task status"),
        _p("code", Kind.TOKEN, "fulfill"),
        _p("focus", Kind.REFERENCE, "ServiceRequest/<id>"),
        _p("owner", Kind.REFERENCE, "Organization/<id>"),
        _p("requester", Kind.REFERENCE, "Organization/<id>"),
        _p("output", Kind.REFERENCE, "Procedure/<id>"),
        SearchParam(
            "overdue",
            Kind.TOKEN,
            "true | false: the Task is (not) still requested past its owner's first-contact "
            "target for its priority (PeerBridge)",
            f"{BASE}/SearchParameter/Task-overdue",
        ),
    ),
    "Procedure": (
        _ID,
        _UPDATED,
        _PATIENT,
        _p("based-on", Kind.REFERENCE, "ServiceRequest/<id>"),
        _p("category", Kind.TOKEN, "system|code or code"),
        _p("code", Kind.TOKEN, "HCPCS H0038 or a SNOMED CT code (system|code or code)"),
        _p("status", Kind.TOKEN, "in-progress | completed | not-done"),
        _p("performer", Kind.REFERENCE, "Organization/<id>"),
        _p("date", Kind.DATE, "the performed period: eq (overlaps), gt/ge/lt/le"),
    ),
    "Patient": (_ID, _p("identifier", Kind.TOKEN, "system|value (both required)")),
    "Consent": (
        _ID,
        _UPDATED,
        _p("patient", Kind.REFERENCE, "Patient/<id> (or search by source-reference or _id)"),
        _p("source-reference", Kind.REFERENCE, "DocumentReference/<id>"),
        _p("status", Kind.TOKEN, "active | inactive"),
    ),
    "DocumentReference": (
        _ID,
        _UPDATED,
        _p("patient", Kind.REFERENCE, "Patient/<id> (or search by _id)"),
    ),
    "HealthcareService": (
        _ID,
        _UPDATED,
        _p("type", Kind.TOKEN, "program kind, or SNOMED 711281004"),
        _p("organization", Kind.REFERENCE, "Organization/<id>"),
        _p("location", Kind.REFERENCE, "Location/<id>: programs meeting there"),
    ),
    "Location": (
        _ID,
        _UPDATED,
        _p("organization", Kind.REFERENCE, "Organization/<id> (managingOrganization)"),
        _p("name", Kind.STRING, "starts with, case-insensitive (name:exact: whole)"),
        _p("address-city", Kind.STRING, "the city, case-insensitive"),
        _p("address-state", Kind.STRING, "the state, case-insensitive"),
        _p("address-postalcode", Kind.STRING, "the postal code, from its start"),
        _p("status", Kind.TOKEN, "active | suspended | inactive"),
    ),
    "Practitioner": (_ID, _p("organization", Kind.REFERENCE, "via the PractitionerRole")),
    "PractitionerRole": (
        _ID,
        _p("organization", Kind.REFERENCE, "Organization/<id>"),
        _p("practitioner", Kind.REFERENCE, "Practitioner/<id>"),
    ),
    "Organization": (_ID,),
    "Observation": (
        _ID,
        _p("patient", Kind.REFERENCE, "Patient/<id> (or search by _id)"),
        _p("category", Kind.TOKEN, "survey"),
        _p("status", Kind.TOKEN, "final"),
        _p("code", Kind.TOKEN, "LOINC total score code"),
    ),
    "QuestionnaireResponse": (
        _ID,
        _p("patient", Kind.REFERENCE, "Patient/<id> (or search by _id)"),
        _p("author", Kind.REFERENCE, "Organization/<id>"),
        _p("questionnaire", Kind.REFERENCE, "the instrument's Questionnaire URL"),
        _p("status", Kind.TOKEN, "completed"),
    ),
    "Encounter": (_ID, _p("patient", Kind.REFERENCE, "Patient/<id>: attendance Encounters")),
    "AuditEvent": (
        _ID,
        _p("patient", Kind.REFERENCE, "Patient/<id>: newest first (or search by _id)"),
    ),
}

# resource type → the _include / _revinclude values it supports.
INCLUDES: dict[str, tuple[str, ...]] = {
    "ServiceRequest": (
        "ServiceRequest:patient",
        "ServiceRequest:subject",
        "ServiceRequest:supporting-info",
        "ServiceRequest:requester",
        "ServiceRequest:performer",
    ),
    "Task": ("Task:focus", "Task:output", "Task:patient", "Task:owner"),
    "HealthcareService": ("HealthcareService:location",),
    "Consent": ("Consent:source-reference",),
    "PractitionerRole": ("PractitionerRole:organization", "PractitionerRole:practitioner"),
}
REVINCLUDES: dict[str, tuple[str, ...]] = {"ServiceRequest": ("Task:focus",)}

# `_sort` values → the order of the keyset walk, for the types searched in SQL by keyset.
# Oldest change first is the polling order: a resource changed during a walk is met again.
SORT_ORDERS = {
    "_lastUpdated": Order.OLDEST_CHANGE_FIRST,
    "-_lastUpdated": Order.NEWEST_CHANGE_FIRST,
}
SORTABLE = frozenset({"ServiceRequest", "Task", "Procedure", "HealthcareService", "Location"})
SORT_DOCUMENTATION = (
    "_lastUpdated (oldest change first: the polling order) or -_lastUpdated (newest change "
    "first, the default)"
)

_CONTROL = frozenset(
    {"_count", "_cursor", "_include", "_revinclude", "_total", "_format", "_sort"}
)


@dataclass(frozen=True)
class Filter:
    name: str
    op: Op
    values: tuple[str, ...]  # OR-ed

    def one(self) -> str:
        return self.values[0]


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    filters: tuple[Filter, ...] = ()
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    includes: tuple[str, ...] = ()
    revincludes: tuple[str, ...] = ()
    unparsed: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    order: Order = Order.NEWEST_CHANGE_FIRST

    def get(self, name: str) -> list[Filter]:
        return [f for f in self.filters if f.name == name]

    def first(self, name: str) -> Filter | None:
        found = self.get(name)
        return found[0] if found else None


# Search instants stay a day clear of datetime's ends, so a bound ± a step never overflows.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def search_instant(value: str, where: str) -> datetime:
    """A search date: a full instant, or a day (YYYY-MM-DD) taken as its start in UTC."""
    stamp: datetime | None = None
    if len(value) == 10:
        day = datetime.fromisoformat(value) if value[4] == "-" else None
        if day is not None:
            stamp = day.replace(tzinfo=UTC)
    stamp = stamp or parse_instant(value, where)
    try:
        in_range = _EARLIEST <= stamp.astimezone(UTC) <= _LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise BadRequest("must fall between 0001-01-02 and 9999-12-30 in UTC", field=where)
    return stamp


def _date_filter(name: str, value: str) -> Filter:
    prefix = value[:2]
    op = Op(prefix) if prefix in {o.value for o in Op} else Op.EQ
    stamp = value[2:] if prefix in {o.value for o in Op} else value
    try:
        search_instant(stamp, name)
    except ValueError as error:
        raise BadRequest("not a FHIR date or dateTime", field=name) from error
    return Filter(name, op, (stamp,))


def _supported(table: dict[str, tuple[str, ...]], resource_type: str) -> str:
    """What a refusal of an `_include`/`_revinclude` value says (never the value sent)."""
    values = table.get(resource_type, ())
    return f"{resource_type} supports {', '.join(values)}" if values else "none supported here"


def parse_search(resource_type: str, query: Iterable[tuple[str, str]]) -> SearchRequest:
    """Parse a query string (as key/value pairs) against the table; refuse what it lacks."""
    allowed = {p.name: p for p in SEARCH_PARAMS.get(resource_type, ())}
    problems: list[InvalidDetail] = []
    filters: list[Filter] = []
    count = DEFAULT_COUNT
    cursor = None
    includes: list[str] = []
    revincludes: list[str] = []
    order = Order.NEWEST_CHANGE_FIRST
    pairs = tuple(query)
    # Bundle entry URLs and If-None-Exist criteria reach here percent-decoded (%00 is NUL).
    check_parameters(pairs)
    for raw_name, value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in _CONTROL:
            if name == "_count":
                # ASCII digits only ("²" is a digit int() refuses), and no int() of thousands
                # of digits: anything that long is over the cap anyway.
                significant = value.lstrip("0")
                if not (value.isascii() and value.isdigit()) or not significant:
                    problems.append(InvalidDetail("_count", "must be a positive integer"))
                elif len(significant) > 9:
                    count = MAX_PAGE_SIZE
                else:
                    count = min(int(significant), MAX_PAGE_SIZE)  # capped, as FHIR allows
            elif name == "_cursor":
                cursor = value
            elif name == "_include":
                if value in INCLUDES.get(resource_type, ()):
                    includes.append(value)
                else:
                    problems.append(InvalidDetail("_include", _supported(INCLUDES, resource_type)))
            elif name == "_revinclude":
                if value in REVINCLUDES.get(resource_type, ()):
                    revincludes.append(value)
                else:
                    problems.append(
                        InvalidDetail("_revinclude", _supported(REVINCLUDES, resource_type))
                    )
            elif name == "_sort":
                if resource_type in SORTABLE and value in SORT_ORDERS:
                    order = SORT_ORDERS[value]
                else:
                    problems.append(
                        InvalidDetail("_sort", f"{resource_type} sorts by {SORT_DOCUMENTATION}")
                    )
            continue
        param = allowed.get(name)
        if param is None or (modifier and modifier != "exact"):
            problems.append(
                InvalidDetail(raw_name, f"unsupported search parameter on {resource_type}")
            )
            continue
        try:
            if param.kind is Kind.DATE:
                filters.append(_date_filter(name, value))
            else:
                filters.append(Filter(name, Op.EQ, tuple(v for v in value.split(",") if v)))
        except Invalid as error:
            problems.extend(error.details)
    if problems:
        raise BadRequest(problems)
    return SearchRequest(
        resource_type,
        tuple(filters),
        count,
        cursor,
        tuple(includes),
        tuple(revincludes),
        pairs,
        order,
    )


def page_request(request: SearchRequest) -> PageRequest:
    """The keyset page a search asks for (`_count`, `_cursor`, `_sort`)."""
    try:
        return PageRequest.of(request.count, request.cursor, request.order)
    except Invalid as error:
        raise BadRequest(
            "not a cursor this server issued for this order (keep the _sort of the walk)",
            field="_cursor",
        ) from error


def reference_id(value: str, resource_type: str, where: str) -> UUID:
    """`Type/<uuid>` or a bare `<uuid>` (FHIR allows both for reference parameters)."""
    text = value.removeprefix(f"{resource_type}/")
    if "/" in text:
        text = text.rsplit("/", 1)[-1] if text.startswith("http") else ""
    try:
        return UUID(text)
    except ValueError as error:
        raise BadRequest(f"must be {resource_type}/<id>", field=where) from error


def ids_of(request: SearchRequest, name: str, resource_type: str) -> list[UUID]:
    """Every id a reference (or `_id`) parameter names, as `Type/<id>` or `<id>`."""
    return [reference_id(v, resource_type, name) for f in request.get(name) for v in f.values]


def one_id(request: SearchRequest, name: str, resource_type: str) -> UUID | None:
    ids = ids_of(request, name, resource_type)
    if len(ids) > 1:
        raise BadRequest("one value only", field=name)
    return ids[0] if ids else None


def token_values(request: SearchRequest, name: str) -> tuple[str, ...]:
    return tuple(v for f in request.get(name) for v in f.values)


def flag(request: SearchRequest, name: str) -> bool | None:
    """A `true | false` token parameter; None when absent."""
    values = set(token_values(request, name))
    if not values:
        return None
    if len(values) > 1 or not values <= {"true", "false"}:
        raise BadRequest("true or false", field=name)
    return values == {"true"}


def since(request: SearchRequest) -> tuple[datetime | None, datetime | None]:
    """`_lastUpdated` as (exclusive lower, exclusive upper) bounds."""
    lower = upper = None
    for f in request.get("_lastUpdated"):
        stamp = search_instant(f.one(), "_lastUpdated")
        if f.op in (Op.GT, Op.GE):
            lower = stamp if f.op is Op.GT else stamp - _EPSILON
        elif f.op in (Op.LT, Op.LE):
            upper = stamp if f.op is Op.LT else stamp + _EPSILON
        else:
            raise BadRequest("use a prefix: gt, ge, lt or le", field="_lastUpdated")
    return lower, upper


_EPSILON = timedelta(microseconds=1)
