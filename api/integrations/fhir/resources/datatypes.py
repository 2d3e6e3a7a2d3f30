"""Building and reading the FHIR datatypes every mapper uses: Reference, Meta, instants, codes.

Mappers produce FHIR JSON (`dict`) shaped by the R4B model (`finish`), by alias, without nulls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from fhir.resources.R4B.resource import Resource

from api.domain.errors import Invalid
from api.integrations.fhir.resources import codes

Json = dict[str, Any]


# Re-validating every outgoing resource through its R4B model costs ~2 ms per resource (10x the
# mapping itself); the tests switch it on (round trips, both Node validators), production trusts
# the mappers those tests pin down. The FHIR rows of `python -m benchmarks run` measure it.
_SHAPE_CHECK = [False]


def check_shapes(enabled: bool) -> None:
    """Validate every mapped resource through its R4B model (tests, debugging)."""
    _SHAPE_CHECK[0] = enabled


def finish(model: type[Resource], resource: Json) -> Json:
    """FHIR JSON without empties; with shape checks on, validated by its R4B model first. The
    JSON itself is returned either way: the model would reformat what clients sent (an instant's
    fraction, say), and tests must see what production serves."""
    pruned: Json = prune(resource)
    if _SHAPE_CHECK[0]:
        model.model_validate(pruned)
    return pruned


def prune(value: Any) -> Any:
    """FHIR forbids empty objects, arrays and strings: drop them (and None) recursively."""
    if isinstance(value, dict):
        return _pruned_object(value)
    if isinstance(value, list):
        return _pruned_array(value)
    if isinstance(value, Mapping):
        return _pruned_object(value)
    if isinstance(value, tuple):
        return _pruned_array(value)
    return value


# Every search and read maps each resource through `prune` (a fifth of a search's CPU before
# these fast paths): plain dicts, lists and strings, the bulk of a resource, skip the generic
# checks; anything else takes them as before.
def _pruned_object(value: Mapping[str, Any]) -> Json:
    out: Json = {}
    for key, item in value.items():
        kind = type(item)
        if kind is str:
            if item:
                out[key] = item
        elif kind is dict:
            inner = _pruned_object(item)
            if inner:
                out[key] = inner
        elif kind is list:
            items = _pruned_array(item)
            if items:
                out[key] = items
        elif item is not None:
            item = prune(item)
            if not _empty(item):
                out[key] = item
    return out


def _pruned_array(value: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for item in value:
        kind = type(item)
        if kind is dict:
            inner = _pruned_object(item)
            if inner:
                out.append(inner)
        elif kind is str:
            if item:
                out.append(item)
        elif item is not None:
            item = prune(item)
            if not _empty(item):
                out.append(item)
    return out


def _empty(value: Any) -> bool:
    return value in (None, "", [], {})


def instant(value: datetime) -> str:
    """An instant with its time zone; microseconds kept so round trips are exact."""
    if value.tzinfo is UTC:  # as asyncpg reads timestamptz: every stamp of every mapped row
        return f"{value.isoformat()[:-6]}Z"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_instant(value: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise Invalid("not a FHIR dateTime", field=where) from error
    if parsed.tzinfo is None:
        raise Invalid("a time needs a time zone", field=where)
    try:
        parsed.astimezone(UTC)  # PostgreSQL keeps instants in UTC: it must exist there
    except OverflowError:
        raise Invalid("outside the years 1 to 9999 in UTC", field=where) from None
    return parsed


def parse_date_time(value: str, where: str, *, end: bool = False) -> datetime:
    """A FHIR dateTime of any precision (YYYY, YYYY-MM, YYYY-MM-DD or an instant) as an instant:
    the start of the year, month or day it names (UTC), or with `end` the start of the next one
    (a period that ends "2026-05-01" lasts through that day)."""
    if "T" in value:
        return parse_instant(value, where)
    parts = value.split("-")
    if len(parts) > 3 or len(parts[0]) != 4 or not all(p.isdigit() for p in parts):
        raise Invalid("not a FHIR dateTime", field=where)
    year, month, day = (int(p) for p in [*parts, "1", "1"][:3])
    try:
        start = datetime(year, month, day, tzinfo=UTC)
    except ValueError as error:
        raise Invalid("not a FHIR dateTime", field=where) from error
    if not end:
        return start
    if len(parts) == 1:
        return start.replace(year=start.year + 1)
    if len(parts) == 2:
        return (start + timedelta(days=32)).replace(day=1)
    return start + timedelta(days=1)


def parse_date(value: str, where: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise Invalid("not a FHIR date (YYYY-MM-DD)", field=where) from error


def meta(
    version: int, updated_at: datetime, *, part2: bool = False, redacted: bool = False
) -> Json:
    security = [*(dict(label) for label in codes.PART2_LABELS if part2)]
    if redacted:
        security.append(dict(codes.REDACTED_LABEL))
    return {"versionId": str(version), "lastUpdated": instant(updated_at), "security": security}


def meta_version(resource: Mapping[str, Any]) -> tuple[int, datetime]:
    found = resource.get("meta") or {}
    try:
        version = int(found.get("versionId", "1"))
    except ValueError as error:
        raise Invalid("must be an integer", field="meta.versionId") from error
    updated = found.get("lastUpdated")
    return version, parse_instant(updated, "meta.lastUpdated") if updated else datetime.now(UTC)


def ref(resource_type: str, resource_id: UUID | str, display: str | None = None) -> Json:
    return {"reference": f"{resource_type}/{resource_id}", "display": display}


def ref_id(reference: Mapping[str, Any] | None, expected: str | Sequence[str], where: str) -> UUID:
    """The id a relative reference `Type/<uuid>` points at, refusing other targets."""
    found = parse_ref(reference, where)
    types = (expected,) if isinstance(expected, str) else tuple(expected)
    if found[0] not in types:
        raise Invalid(f"must reference {' or '.join(types)}", field=where)
    return found[1]


def parse_ref(reference: Mapping[str, Any] | None, where: str) -> tuple[str, UUID]:
    text = (reference or {}).get("reference")
    if not isinstance(text, str) or text.count("/") != 1:
        raise Invalid("needs a relative reference Type/id", field=where)
    resource_type, _, ident = text.partition("/")
    try:
        return resource_type, UUID(ident)
    except ValueError as error:
        raise Invalid("references an id this server never issued", field=where) from error


def coding(system: str, code: str, display: str | None = None) -> Json:
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> Json:
    return {"coding": [coding(system, code, display)], "text": text}


def codes_in(concepts: Iterable[Mapping[str, Any]] | None, system: str) -> list[str]:
    """Every code of `system` in a list of CodeableConcepts (or Codings)."""
    found = []
    for item in concepts or ():
        for code in item["coding"] if "coding" in item else [item]:
            if code.get("system") == system and "code" in code:
                found.append(code["code"])
    return found


def extensions(resource: Mapping[str, Any], url: str) -> list[Mapping[str, Any]]:
    return [e for e in resource.get("extension", ()) if e.get("url") == url]


def extension_value(resource: Mapping[str, Any], url: str, kind: str) -> Any:
    found = extensions(resource, url)
    return found[0].get(kind) if found else None


def languages(concepts: Iterable[Mapping[str, Any]] | None) -> tuple[str, ...]:
    return tuple(codes_in(concepts, codes.BCP47))


def language_concepts(tags: Iterable[str]) -> list[Json]:
    return [concept(codes.BCP47, tag) for tag in tags]
