"""The fast JSON codec reads and writes exactly what the standard library does, including the
values orjson refuses (kept as sent: a FHIR extension may carry a 70-bit integer)."""

from __future__ import annotations

import json

import pytest

from api import wire_json

SAMPLES = [
    '{"a": [1, 2.5, "x", null, true]}',
    '{"big": 1180591620717411303424}',
    '{"lone": "\\ud800"}',
    '{"nested": {"é": "日本"}}',
]


@pytest.mark.parametrize("text", SAMPLES)
def test_loads_reads_what_json_loads_reads(text: str) -> None:
    assert wire_json.loads(text) == json.loads(text)


@pytest.mark.parametrize("text", SAMPLES)
def test_dumps_round_trips(text: str) -> None:
    value = json.loads(text)
    assert json.loads(wire_json.dumps(value)) == value


def test_loads_still_refuses_what_is_not_json() -> None:
    with pytest.raises(ValueError):
        wire_json.loads("{not json")
