"""Conditional read and vread: `If-None-Match` / `If-Modified-Since` → 304 Not Modified.

The validators are the ones every response carries: `ETag: W/"<versionId>"` and
`Last-Modified` = meta.lastUpdated as an HTTP-date (second precision). See
https://hl7.org/fhir/R4/http.html#cread and RFC 9110 §13.1.

A 304 tells the client that the copy it holds is still what it would read now. Some answers
can change without a new version of the record, so they are never 304 (the client gets the
full answer, which it must accept anyway): a redacted answer (the consents in force decide it,
and a revoked consent must reach a client that cached the full resource); a Task listing
Procedures as output (recording one does not version the referral); a Consent with an end
date (its status turns inactive when the date passes).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import Json, parse_instant
from api.integrations.fhir.rest.operation_outcomes import BadRequest

_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([^"]*)"\s*')


def last_modified(resource: Json) -> str | None:
    """meta.lastUpdated as an HTTP-date (the `Last-Modified` header), if the resource has one."""
    stamp = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(stamp, str):
        return None
    return format_datetime(parse_instant(stamp, "meta.lastUpdated").astimezone(UTC), usegmt=True)


def _tags(header: str) -> set[str] | None:
    """The opaque tags an `If-None-Match` lists (weak and strong alike), or None for `*`."""
    if header.strip() == "*":
        return None
    tags = set()
    for part in header.split(","):
        found = _ENTITY_TAG.fullmatch(part)
        if found is None:
            raise BadRequest(
                'If-None-Match is W/"<versionId>" (or a list of them)', field="If-None-Match"
            )
        tags.add(found.group(1))
    return tags


def _http_date(header: str, now: datetime) -> datetime | None:
    """An `If-Modified-Since` date; None when it is not a valid HTTP-date or lies in the
    future, which RFC 9110 §13.1.3 says to ignore."""
    try:
        stamp = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None
    if stamp.tzinfo is None:
        return None
    return stamp if stamp <= now else None


def _changes_without_a_version(resource: Json) -> bool:
    labels = (resource.get("meta") or {}).get("security") or ()
    if any(label.get("code") == codes.REDACTED_LABEL["code"] for label in labels):
        return True
    if resource.get("resourceType") == "Task" and resource.get("output"):
        return True
    if resource.get("resourceType") == "Consent":
        return bool(((resource.get("provision") or {}).get("period") or {}).get("end"))
    return False


def not_modified(
    resource: Json, if_none_match: str | None, if_modified_since: str | None, now: datetime
) -> bool:
    """Whether a read may answer 304: the client's copy is the current one."""
    if if_none_match is None and if_modified_since is None:
        return False
    if _changes_without_a_version(resource):
        if if_none_match is not None:
            _tags(if_none_match)  # still refuse a malformed header
        return False
    meta = resource.get("meta") or {}
    if if_none_match is not None:  # it takes precedence over If-Modified-Since (RFC 9110)
        tags = _tags(if_none_match)
        return tags is None or str(meta.get("versionId")) in tags
    since = _http_date(if_modified_since or "", now)
    stamp = meta.get("lastUpdated")
    if since is None or not isinstance(stamp, str):
        return False
    updated = parse_instant(stamp, "meta.lastUpdated").replace(microsecond=0)
    return updated <= since
