"""Free text: how long each kind of field may be, and what no text may hold.

One table (the README's "Text limits" section lists it), checked by the use cases, not by the
database: a refusal names the field, in the door's shape, before anything is written. Lengths
count characters (Unicode code points), not bytes.

No text may hold NUL (PostgreSQL text and jsonb cannot store it) or an unpaired UTF-16
surrogate (`"\\ud800"` in JSON: not a character, cannot be encoded as UTF-8). The doors refuse
both at their edge already; the use cases check again so no other way in can store them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from api.domain.errors import Invalid, InvalidDetail

# --- limits, in characters --------------------------------------------------------------------
# Names of people, organizations, programs and supervisors (HL7 v2 XPN allows ~190).
NAME = 200
# Identifier values, certification numbers, codes, phone numbers, document titles.
SHORT = 200
# URIs: identifier and code systems, document URLs, consent source references.
URI = 2000
# Language tags (BCP 47; real tags are far shorter).
LANGUAGE = 35
# E-mail addresses (RFC 5321 path limit).
EMAIL = 254
# Reasons (referral, status change, revocation), notes, session topics, code displays.
REASON = 2000
# Program descriptions and eligibility criteria.
DESCRIPTION = 4000

# Every limit with what it covers, for the README table and its test.
LIMITS: dict[str, tuple[int, str]] = {
    "NAME": (
        NAME,
        "given and family names, organization, program, location, supporter, supervisor names",
    ),
    "SHORT": (
        SHORT,
        "identifier values, certification type/number/issuer/jurisdiction, codes, phone, "
        "document titles, address lines, city, district, state, postal code, country",
    ),
    "URI": (
        URI,
        "identifier and code systems, document URLs, consent source references, "
        "location telecom values",
    ),
    "LANGUAGE": (LANGUAGE, "language tags"),
    "EMAIL": (EMAIL, "e-mail addresses"),
    "REASON": (
        REASON,
        "referral reasons, code displays and concept texts, status reasons, revocation "
        "reasons, attendance notes, session topics",
    ),
    "DESCRIPTION": (DESCRIPTION, "program and location descriptions, program eligibility"),
}

_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(value: str) -> str | None:
    """Why no field may hold this text, or None when it is fine."""
    if "\x00" in value:
        return "must not contain a NUL character"
    if not value.isascii() and _SURROGATE.search(value):
        return "must not contain an unpaired surrogate (not a Unicode character)"
    return None


def text_problems(field: str, value: str | None, limit: int) -> list[InvalidDetail]:
    """What is wrong with one free-text value (None = absent, which is fine here)."""
    if value is None:
        return []
    reason = unstorable(value)
    if reason is not None:
        return [InvalidDetail(field, reason)]
    if len(value) > limit:
        return [InvalidDetail(field, f"at most {limit} characters")]
    return []


def texts_problems(
    checks: Iterable[tuple[str, str | None, int]],
) -> list[InvalidDetail]:
    """`text_problems` of several (field, value, limit) at once."""
    return [problem for check in checks for problem in text_problems(*check)]


def coding_checks(
    field: str, system: str, code: str, display: str | None
) -> list[tuple[str, str | None, int]]:
    """The checks of one coding (system, code, display) at `field`."""
    return [
        (f"{field}.system", system, URI),
        (f"{field}.code", code, SHORT),
        (f"{field}.display", display, REASON),
    ]


def check_texts(checks: Iterable[tuple[str, str | None, int]]) -> None:
    """Refuse (`Invalid`, naming each field) when any value is too long or unstorable."""
    problems = texts_problems(checks)
    if problems:
        raise Invalid(problems)
