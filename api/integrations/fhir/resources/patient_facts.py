"""The facts PeerBridge's columns hold, derived from a FHIR Patient kept as sent: which name is
current, which phone and email to use, the preferred language, the birth date.

The sent elements stay the truth (a read returns them); these only feed GraphQL's flat view,
searches and rules. See https://hl7.org/fhir/R4/patient.html#notes (name and contact choice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from api.domain.errors import Invalid
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import parse_instant

_PREFERRED_NAME_USES = ("official", "usual")


def _over(end: str, now: datetime, where: str) -> bool:
    """Has a FHIR dateTime `end` (a year, year-month, date or instant) passed?"""
    today = now.date()
    if len(end) == 4 and end.isdigit():
        return int(end) < today.year
    if len(end) == 7:
        year, _, month = end.partition("-")
        if year.isdigit() and month.isdigit():
            return (int(year), int(month)) < (today.year, today.month)
    elif len(end) == 10:
        try:
            return date.fromisoformat(end) < today
        except ValueError:
            pass
    else:
        return parse_instant(end, where) < now
    raise Invalid("not a FHIR dateTime", field=where)


def _current(element: Mapping[str, Any], where: str, now: datetime) -> bool:
    """In use now: not marked old, and its period (if any) has not ended."""
    end = (element.get("period") or {}).get("end")
    return element.get("use") != "old" and not (
        end is not None and _over(end, now, f"{where}.period.end")
    )


def current_name(names: Sequence[Mapping[str, Any]], now: datetime) -> tuple[str, str]:
    """(given names joined with a space, family) of the current name: the first name in use
    whose period has not ended, preferring use official or usual."""
    if not names:
        raise Invalid("a patient needs a name", field="Patient.name")
    usable = [
        name
        for index, name in enumerate(names)
        if _current(name, f"Patient.name[{index}]", now)
        and name.get("family")
        and name.get("given")
    ]
    preferred = [name for name in usable if name.get("use") in _PREFERRED_NAME_USES]
    if not usable:
        raise Invalid(
            "needs a current name (not old, period not ended) with family and given parts: "
            "PeerBridge lists participants by them",
            field="Patient.name",
        )
    name = (preferred or usable)[0]
    return " ".join(name["given"]), str(name["family"])


def best_contact(telecom: Sequence[Mapping[str, Any]], system: str, now: datetime) -> str | None:
    """The value of the current contact point of `system` with the best (lowest) rank; the
    first one sent among equals."""
    ranked = [
        (point.get("rank", float("inf")), index, str(point["value"]))
        for index, point in enumerate(telecom)
        if point.get("system") == system
        and point.get("value")
        and _current(point, f"Patient.telecom[{index}]", now)
    ]
    return min(ranked)[2] if ranked else None


def preferred_language(communication: Sequence[Mapping[str, Any]]) -> str | None:
    """The BCP 47 code of the language marked preferred, else of the first language sent."""
    ordered = sorted(communication, key=lambda c: c.get("preferred") is not True)
    for item in ordered:
        for coding in (item.get("language") or {}).get("coding", ()):
            if coding.get("system") == codes.BCP47 and coding.get("code"):
                return str(coding["code"])
    return None


def birth_date(sent: str | None) -> date | None:
    """The full birth date; a year or year-month is kept as sent but has no date column."""
    return date.fromisoformat(sent) if sent is not None and len(sent) == 10 else None


def born_after(sent: str, now: datetime) -> bool:
    """Does a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) start after `now`?"""
    padded = sent + "-01-01"[len(sent) - 4 :]
    try:
        return datetime.fromisoformat(f"{padded}T00:00:00+00:00") > now
    except ValueError as error:
        raise Invalid("not a FHIR date", field="Patient.birthDate") from error
