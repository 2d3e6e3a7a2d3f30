"""The edge guard (`api.input_guard`): depth measured without recursion, exactly as a JSON
parser nests; strings no field may hold refused by path; federation representations checked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.domain.errors import Invalid, MalformedRequest
from api.input_guard import check_parameters, nesting_depth, parse_json
from api.schema.entities import representation_problem, resolve_checked

# Strings full of what could fool a bracket counter: quotes, backslashes, brackets.
_tricky_text = st.text(alphabet='[]{}"\\ab\u00e9\u2028', max_size=12)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky_text, _containers, max_leaves=30
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(_json_values, st.booleans())
def test_nesting_depth_is_the_depth_of_the_json_value(value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()

    assert nesting_depth(raw) == _depth(value)


def test_a_hundred_thousand_brackets_are_refused_without_parsing() -> None:
    with pytest.raises(MalformedRequest, match="deeper than 64"):
        parse_json(b"[" * 100_000 + b"]" * 100_000, max_depth=64)


def test_brackets_hidden_in_strings_do_not_count_and_escaped_quotes_do_not_end_them() -> None:
    raw = json.dumps({"a": "]]]]" + '\\"' + "[[[[" * 100, "b": [[["\\\\"]]]}).encode()

    assert nesting_depth(raw) == 4
    assert parse_json(raw, max_depth=4)["b"] == [[["\\\\"]]]


def test_malformed_json_is_bounded_by_its_readable_prefix() -> None:
    # A parser reads all those brackets before failing on the stray quote-less text.
    assert nesting_depth(b"[" * 5_000 + b"oops") == 5_000
    with pytest.raises(MalformedRequest, match="deeper"):
        parse_json(b"[" * 5_000 + b"oops", max_depth=64)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"a": ', "not JSON"),
        (b'{"a": "\x00"}', "not JSON"),  # a raw control character inside a string
        (b"1" * 5000, "not JSON"),  # beyond Python's int-digits limit
    ],
)
def test_bodies_that_are_not_utf8_json_are_malformed(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedRequest, match=message):
        parse_json(raw, max_depth=64)


def test_each_unstorable_string_is_named_by_its_path() -> None:
    raw = (
        b'{"variables": {"input": {"givenName": "A\\u0000", "ids": ["ok", "\\ud800x"]},'
        b' "k\\u0000ey": 1, "weird key!": "\\udfff"}}'
    )
    with pytest.raises(Invalid) as refused:
        parse_json(raw, max_depth=64)

    assert [(d.field, d.message.split(" (")[0]) for d in refused.value.details] == [
        ("variables.input.givenName", "must not contain a NUL character"),
        ("variables.input.ids[1]", "must not contain an unpaired surrogate"),
        ("variables", "a key must not contain a NUL character"),
        ("variables.?", "must not contain an unpaired surrogate"),
    ]
    assert not isinstance(refused.value, MalformedRequest)


def test_paths_start_at_the_root_the_door_names() -> None:
    raw = b'{"resourceType": "Patient", "name": [{"family": "L\\u0000"}]}'
    with pytest.raises(Invalid) as refused:
        parse_json(raw, max_depth=64, root=lambda body: body["resourceType"])

    assert refused.value.details[0].field == "Patient.name[0].family"


def test_a_valid_surrogate_pair_and_other_control_characters_are_text() -> None:
    value = parse_json(b'{"a": "\\ud83d\\ude00 \\u0001 \\u2028"}', max_depth=2)

    assert value == {"a": "\U0001f600 \x01 \u2028"}


def test_parameters_are_refused_by_name() -> None:
    with pytest.raises(MalformedRequest) as refused:
        check_parameters([("status", "active"), ("identifier", "a\x00")])
    assert refused.value.details[0].field == "identifier"

    with pytest.raises(MalformedRequest, match="parameter name"):
        check_parameters([("x\x00", "1")])


_ENTITIES = frozenset({"Patient", "Organization"})
_ID = "6f1c2a1e-9d2b-4b8e-8a55-1c1d3f0a6b7e"


@pytest.mark.parametrize(
    ("representation", "field"),
    [
        ("Patient", "representations[0]"),
        ({"id": _ID}, "representations[0].__typename"),
        ({"__typename": "Query", "id": _ID}, "representations[0].__typename"),
        ({"__typename": 7, "id": _ID}, "representations[0].__typename"),
        ({"__typename": "Patient"}, "representations[0].id"),
        ({"__typename": "Patient", "id": 5}, "representations[0].id"),
        ({"__typename": "Patient", "id": "x"}, "representations[0].id"),
        ({"__typename": "Patient", "id": _ID, "name": "x"}, "representations[0]"),
    ],
)
def test_an_unsound_representation_is_named(representation: Any, field: str) -> None:
    problem = representation_problem(0, representation, _ENTITIES)

    assert problem is not None
    assert problem.details[0].field == field


def test_sound_representations_resolve_in_place_around_unsound_ones() -> None:
    given_to_resolver: list[Any] = []

    def resolve(sound: list[Any]) -> list[Any]:
        given_to_resolver.extend(sound)
        return [f"resolved {r['id']}" for r in sound]

    representations = [
        {"__typename": "Patient", "id": _ID},
        {"__typename": "Nope", "id": _ID},
        {"__typename": "Organization", "id": _ID.upper()},
    ]
    results = resolve_checked(representations, _ENTITIES, resolve)

    assert results[0] == f"resolved {_ID}"
    assert isinstance(results[1], Invalid)
    assert results[2] == f"resolved {_ID.upper()}"
    assert given_to_resolver == [representations[0], representations[2]]
    assert given_to_resolver[0] is not representations[0]  # strawberry pops from its copy
