"""Every mapped resource passes through `prune` and `instant`; their fast paths are checked
against the plain definitions. `prune` drops exactly what FHIR forbids — None, empty strings,
arrays and objects, at any depth — and keeps everything else as it was; `instant` writes any
aware or naive stamp as the same UTC instant."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from api.integrations.fhir.resources.datatypes import instant, prune


def _by_definition(value: Any) -> Any:
    if isinstance(value, Mapping):
        pruned = {k: _by_definition(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
    if isinstance(value, list | tuple):
        items = [_by_definition(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


class _Code(StrEnum):
    DRAFT = "draft"


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(["", "x", _Code.DRAFT]),
    st.text(max_size=3),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    objects = st.dictionaries(st.text(max_size=3), children, max_size=4)
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        objects,
        objects.map(MappingProxyType),
    )


@given(st.recursive(_SCALARS, _containers, max_leaves=30))
def test_prune_drops_exactly_the_empties_at_every_depth(value: Any) -> None:
    assert prune(value) == _by_definition(value)


def test_prune_keeps_falsy_values_that_are_not_empty() -> None:
    assert prune({"a": 0, "b": False, "c": 0.0, "d": [None, "", {}, [[]]], "e": ({},)}) == {
        "a": 0,
        "b": False,
        "c": 0.0,
    }


def _instant_by_definition(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_ZONES = st.sampled_from(
    [None, UTC, timezone(timedelta(0)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]
)


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)), _ZONES)
def test_instant_writes_every_stamp_as_its_utc_instant(stamp: datetime, zone: Any) -> None:
    value = stamp.replace(tzinfo=zone)
    assert instant(value) == _instant_by_definition(value)
