"""SMART v2 scope grammar (api/domain/scopes.py): parsing, v1 aliases, satisfies, narrow.

https://build.fhir.org/ig/HL7/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.scopes import (
    PERMISSION_ORDER,
    Scope,
    any_satisfies,
    narrow,
    parse_scope,
    parse_scopes,
    satisfies,
)


def scope(text: str) -> Scope:
    parsed = parse_scope(text)
    assert parsed is not None, text
    return parsed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("system/*.cruds", Scope("system", "*", "cruds")),
        ("patient/Observation.rs", Scope("patient", "Observation", "rs")),
        ("user/ServiceRequest.c", Scope("user", "ServiceRequest", "c")),
        ("system/Observation.rs?category=laboratory",
         Scope("system", "Observation", "rs", "category=laboratory")),
        # SMART v1 spellings map onto v2 letters.
        ("user/Task.read", Scope("user", "Task", "rs")),
        ("system/Task.write", Scope("system", "Task", "cud")),
        ("system/Task.*", Scope("system", "Task", "cruds")),
        ("patient/*.read", Scope("patient", "*", "rs")),
    ],
)
def test_resource_scopes_parse(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "openid", "fhirUser", "launch/patient", "offline_access",
        "system/Task.rc",          # letters out of order
        "system/Task.rr",          # repeated letter
        "system/Task.",            # no permissions
        "system/Task.x",           # unknown letter
        "system/task.r",           # resource types start upper case
        "System/Task.r",           # contexts are lower case
        "admin/Task.r",            # unknown context
        "system/Task.cruds?",      # empty restriction
        "system/Task",             # no permission part at all
        "system/Task.r s",
        "",
    ],
)
def test_non_resource_or_malformed_scopes_are_not_parsed(text: str) -> None:
    assert parse_scope(text) is None


def test_parse_scopes_keeps_the_resource_scopes_only() -> None:
    assert parse_scopes(["openid", "system/Task.rs", "bogus", "user/*.read"]) == (
        Scope("system", "Task", "rs"), Scope("user", "*", "rs"),
    )


@pytest.mark.parametrize("text", ["system/*.cruds", "user/Task.rs", "patient/Consent.c",
                                  "system/Observation.rs?category=vital-signs"])
def test_str_round_trips(text: str) -> None:
    assert str(scope(text)) == text


@pytest.mark.parametrize(
    ("granted", "needed", "ok"),
    [
        ("system/*.cruds", "system/ServiceRequest.rs", True),     # wildcard type
        ("system/ServiceRequest.cruds", "system/ServiceRequest.r", True),  # letter superset
        ("system/ServiceRequest.rs", "system/ServiceRequest.cruds", False),
        ("system/ServiceRequest.rs", "system/Task.rs", False),    # other type
        ("system/Task.s", "system/Task.r", False),                # search is not read
        ("system/*.rs", "user/Task.r", True),                     # backend acts for its org
        ("user/*.cruds", "system/Task.r", False),                 # user never implies system
        ("patient/*.cruds", "user/Task.r", False),
        ("user/*.cruds", "patient/Task.r", False),
        ("system/Observation.rs?category=laboratory", "system/Observation.rs", False),
        ("system/Observation.rs?category=laboratory",
         "system/Observation.r?category=laboratory", True),
        ("system/Observation.rs", "system/Observation.r?category=laboratory", True),
        ("user/Task.read", "user/Task.rs", True),                 # v1 read = rs
        ("user/Task.write", "user/Task.r", False),                # v1 write has no read
    ],
)
def test_satisfies(granted: str, needed: str, ok: bool) -> None:
    assert satisfies(scope(granted), scope(needed)) is ok


def test_any_satisfies_and_narrow() -> None:
    allowed = parse_scopes(["system/ServiceRequest.rs", "system/Task.cruds"])
    assert any_satisfies(allowed, scope("system/Task.u"))
    assert not any_satisfies(allowed, scope("system/Patient.r"))
    requested = parse_scopes(["system/Task.rs", "system/Patient.r", "system/ServiceRequest.r"])
    assert narrow(requested, allowed) == parse_scopes(["system/Task.rs", "system/ServiceRequest.r"])


# --- properties -----------------------------------------------------------------------------

contexts = st.sampled_from(["patient", "user", "system"])
types = st.sampled_from(["*", "Task", "ServiceRequest", "Patient", "Consent"])
permissions = st.sets(st.sampled_from(PERMISSION_ORDER), min_size=1).map(
    lambda letters: "".join(c for c in PERMISSION_ORDER if c in letters)
)
queries = st.sampled_from([None, None, "category=laboratory", "status=active"])
scopes = st.builds(Scope, contexts, types, permissions, queries)


@given(scopes)
def test_every_scope_round_trips_through_text(value: Scope) -> None:
    assert parse_scope(str(value)) == value


@given(scopes)
def test_satisfies_is_reflexive(value: Scope) -> None:
    assert satisfies(value, value)


@given(scopes, scopes, scopes)
def test_satisfies_is_transitive(a: Scope, b: Scope, c: Scope) -> None:
    if satisfies(a, b) and satisfies(b, c):
        assert satisfies(a, c)


@given(st.lists(scopes, max_size=5), st.lists(scopes, max_size=5))
def test_narrow_never_returns_what_allowed_does_not_cover(
    requested: list[Scope], allowed: list[Scope]
) -> None:
    for granted in narrow(requested, allowed):
        assert granted in requested
        assert any_satisfies(allowed, granted)
