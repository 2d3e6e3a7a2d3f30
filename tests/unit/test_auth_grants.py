"""Scope narrowing at the token endpoint (RFC 6749 3.3): never beyond the registration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.auth.grants import ScopeRefused, grant, intersect, parse_request, render
from api.domain.scopes import PERMISSION_ORDER, Scope, any_satisfies, parse_scope, parse_scopes


def s(text: str) -> Scope:
    parsed = parse_scope(text)
    assert parsed is not None
    return parsed


@pytest.mark.parametrize(
    ("requested", "allowed", "expected"),
    [
        ("system/*.rs", "system/Task.cruds", "system/Task.rs"),
        ("system/Task.cruds", "system/*.rs", "system/Task.rs"),
        ("system/Task.cruds", "system/Task.cruds", "system/Task.cruds"),
        ("user/Task.r", "system/*.cruds", "user/Task.r"),
        ("system/Task.c", "system/Task.rs", None),
        ("system/Task.rs", "system/Patient.rs", None),
        ("system/Task.rs", "user/Task.rs", None),
        ("patient/Task.rs", "system/Task.rs", None),
        ("system/Observation.rs", "system/Observation.r?category=laboratory",
         "system/Observation.r?category=laboratory"),
        ("system/Observation.rs?category=laboratory", "system/Observation.cruds",
         "system/Observation.rs?category=laboratory"),
        ("system/Observation.rs?category=vital-signs", "system/Observation.r?category=laboratory",
         None),
    ],
)
def test_intersect(requested: str, allowed: str, expected: str | None) -> None:
    result = intersect(s(requested), s(allowed))
    assert (str(result) if result else None) == expected


ALLOWED = parse_scopes(["system/ServiceRequest.rs", "system/Task.cruds"])


def test_nothing_requested_grants_the_defaults_or_else_everything_allowed() -> None:
    assert grant([], ALLOWED, parse_scopes(["system/Task.rs"])) == parse_scopes(["system/Task.rs"])
    assert grant([], ALLOWED, ()) == ALLOWED


def test_a_wildcard_request_is_narrowed_to_the_registration() -> None:
    granted = grant(parse_request("system/*.rs"), ALLOWED, ())
    assert render(granted) == "system/ServiceRequest.rs system/Task.rs"


def test_duplicates_and_covered_scopes_are_dropped() -> None:
    granted = grant(parse_request("system/Task.r system/Task.rs system/Task.rs"), ALLOWED, ())
    assert render(granted) == "system/Task.rs"


@pytest.mark.parametrize("text", ["system/Patient.r", "system/Task.rs system/Consent.c", "openid",
                                  "user/Task.rx"])
def test_a_scope_outside_the_registration_is_refused_whole(text: str) -> None:
    with pytest.raises(ScopeRefused):
        grant(parse_request(text), ALLOWED, ())


contexts = st.sampled_from(["patient", "user", "system"])
types = st.sampled_from(["*", "Task", "ServiceRequest", "Patient"])
permissions = st.sets(st.sampled_from(PERMISSION_ORDER), min_size=1).map(
    lambda letters: "".join(c for c in PERMISSION_ORDER if c in letters)
)
queries = st.sampled_from([None, None, "status=active"])
scopes = st.builds(Scope, contexts, types, permissions, queries)


@given(st.lists(scopes, max_size=4), st.lists(scopes, min_size=1, max_size=4))
def test_a_grant_never_exceeds_the_registration(
    requested: list[Scope], allowed: list[Scope]
) -> None:
    try:
        granted = grant(requested, allowed, ())
    except ScopeRefused:
        return
    for scope in granted:
        assert any_satisfies(allowed, scope)
        # ... nor what was asked for.
        assert not requested or any_satisfies(requested, scope)


@given(scopes, scopes)
def test_intersect_is_covered_by_both_sides(requested: Scope, allowed: Scope) -> None:
    result = intersect(requested, allowed)
    if result is not None:
        assert any_satisfies([allowed], result)
        assert any_satisfies([requested], result)


@given(st.lists(scopes, min_size=1, max_size=4), st.lists(scopes, min_size=1, max_size=4))
def test_what_the_registration_covers_is_granted_unchanged(
    requested: list[Scope], allowed: list[Scope]
) -> None:
    if all(any_satisfies(allowed, scope) for scope in requested):
        granted = grant(requested, allowed, ())
        for scope in requested:
            assert any_satisfies(granted, scope)
