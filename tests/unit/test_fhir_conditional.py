"""When a conditional read may answer 304 (api.integrations.fhir.rest.conditional)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.domain.errors import Invalid
from api.integrations.fhir.rest.conditional import last_modified, not_modified

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
STAMP = "2026-12-01T10:00:00.654321Z"


def _resource(kind: str = "ServiceRequest", **elements: object) -> dict[str, object]:
    return {
        "resourceType": kind,
        "id": "x",
        "meta": {"versionId": "3", "lastUpdated": STAMP, "security": []},
        **elements,
    }


def test_last_modified_is_the_http_date_of_last_updated() -> None:
    assert last_modified(_resource()) == "Tue, 01 Dec 2026 10:00:00 GMT"
    assert last_modified({"resourceType": "Bundle"}) is None


@pytest.mark.parametrize(
    ("if_none_match", "expected"),
    [('W/"3"', True), ('"3"', True), ('W/"2", W/"3"', True), ("*", True), ('W/"2"', False)],
)
def test_if_none_match_compares_version_tags_weakly(if_none_match: str, expected: bool) -> None:
    assert not_modified(_resource(), if_none_match, None, NOW) is expected


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        ("Tue, 01 Dec 2026 10:00:00 GMT", True),  # the same second as lastUpdated
        ("Tue, 01 Dec 2026 11:00:00 GMT", True),
        ("Tue, 01 Dec 2026 09:59:59 GMT", False),
        ("Wed, 02 Dec 2026 10:00:00 GMT", False),  # in the future: ignored
        ("not a date", False),
    ],
)
def test_if_modified_since_compares_whole_seconds(since: str, expected: bool) -> None:
    assert not_modified(_resource(), None, since, NOW) is expected


def test_without_conditions_nothing_is_304() -> None:
    assert not not_modified(_resource(), None, None, NOW)


def test_answers_that_change_without_a_new_version_are_never_304() -> None:
    redacted = _resource()
    redacted["meta"] = {"versionId": "3", "lastUpdated": STAMP, "security": [{"code": "REDACTED"}]}
    with_output = _resource("Task", output=[{"valueReference": {"reference": "Procedure/p"}}])
    ending = _resource("Consent", provision={"period": {"end": "2027-01-01T00:00:00Z"}})
    for resource in (redacted, with_output, ending):
        assert not not_modified(resource, 'W/"3"', None, NOW)
        assert not not_modified(resource, None, "Tue, 01 Dec 2026 11:00:00 GMT", NOW)
    assert not_modified(_resource("Consent", provision={"type": "permit"}), 'W/"3"', None, NOW)
    assert not_modified(_resource("Task", output=[]), 'W/"3"', None, NOW)


def test_a_malformed_if_none_match_is_refused_even_when_no_304_is_possible() -> None:
    with_output = _resource("Task", output=[{"valueReference": {"reference": "Procedure/p"}}])
    for resource in (_resource(), with_output):
        with pytest.raises(Invalid) as refused:
            not_modified(resource, "3", None, NOW)
        assert refused.value.details[0].field == "If-None-Match"
