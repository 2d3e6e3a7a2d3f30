"""Scope narrowing at the token endpoint (RFC 6749 3.3): never beyond the registration."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.auth.grants import ScopeRefused, ScopeRequest, grant, intersect, parse_request, render
from api.domain.scopes import (
    PERMISSION_ORDER,
    Scope,
    any_satisfies,
    parse_scope,
    parse_scopes,
    reordered,
)


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
    nothing = parse_request(None)
    assert grant(nothing, ALLOWED, parse_scopes(["system/Task.rs"])) == parse_scopes(
        ["system/Task.rs"]
    )
    assert grant(nothing, ALLOWED, ()) == ALLOWED


def test_a_wildcard_request_is_narrowed_to_the_registration() -> None:
    granted = grant(parse_request("system/*.rs"), ALLOWED, ())
    assert render(granted) == "system/ServiceRequest.rs system/Task.rs"


def test_duplicates_and_covered_scopes_are_dropped() -> None:
    granted = grant(parse_request("system/Task.r system/Task.rs system/Task.rs"), ALLOWED, ())
    assert render(granted) == "system/Task.rs"


@pytest.mark.parametrize("text", ["system/Patient.r", "system/Task.rs system/Consent.c",
                                  "user/Task.rx", "system/Task.rsu", "system/Task.rs banana"])
def test_a_scope_outside_the_registration_or_malformed_is_refused_whole(text: str) -> None:
    with pytest.raises(ScopeRefused):
        grant(parse_request(text), ALLOWED, ())


@pytest.mark.parametrize(
    ("text", "set_aside"),
    [
        ("system/Task.rs launch/patient", ("launch/patient",)),
        ("openid fhirUser profile system/Task.rs offline_access", ("openid", "fhirUser",
                                                                    "profile", "offline_access")),
        ("launch online_access launch/encounter system/Task.rs",
         ("launch", "online_access", "launch/encounter")),
        ("system/Foo.rs system/Task.rs", ("system/Foo.rs",)),
        ("system/Task.rs user/Servicerequest.r", ("user/Servicerequest.r",)),
    ],
)
def test_scopes_that_mean_nothing_here_are_set_aside_and_the_rest_granted(
    text: str, set_aside: tuple[str, ...]
) -> None:
    request = parse_request(text)
    assert request.set_aside == set_aside
    assert render(grant(request, ALLOWED, ())) == "system/Task.rs"


@pytest.mark.parametrize("text", ["launch/patient", "openid profile", "system/Foo.rs",
                                  "system/Foo.rs launch"])
def test_a_request_of_which_nothing_remains_is_refused(text: str) -> None:
    with pytest.raises(ScopeRefused):
        grant(parse_request(text), ALLOWED, ())


def test_a_wildcard_never_grants_a_type_a_legacy_registration_invented() -> None:
    legacy = parse_scopes(["system/Foo.rs", "system/Task.rs"])
    assert render(grant(parse_request("system/*.rs"), legacy, ())) == "system/Task.rs"
    assert render(grant(parse_request(None), legacy, ())) == "system/Task.rs"
    with pytest.raises(ScopeRefused):
        grant(parse_request("system/*.rs"), parse_scopes(["system/Foo.rs"]), ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("system/Task.rsu", "system/Task.rus"),
        ("system/Task.sr", "system/Task.rs"),
        ("user/*.sdurc?status=active", "user/*.cruds?status=active"),
        ("system/Task.rus", None),
        ("system/Task.rx", None),
        ("system/Task.rr", None),
        ("openid", None),
    ],
)
def test_reordered_suggests_the_smart_v2_letter_order(text: str, expected: str | None) -> None:
    assert reordered(text) == expected


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
        granted = grant(ScopeRequest(tuple(requested)), allowed, ())
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
        granted = grant(ScopeRequest(tuple(requested)), allowed, ())
        for scope in requested:
            assert any_satisfies(granted, scope)
