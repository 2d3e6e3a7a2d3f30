"""The FHIR door keeps what it does not model, as sent, and refuses modifiers it cannot honour."""

from __future__ import annotations

import pytest

from api.domain.errors import Invalid
from api.domain.verbatim import NOTHING_KEPT, kept_for, with_kept
from api.integrations.fhir.resources.kept import Keeping, merge

_KEEPING = Keeping(
    "ServiceRequest",
    owned=frozenset({"status", "subject"}),
    extensions=frozenset({"https://peerbridge.example/shared"}),
)


def test_split_keeps_unmodelled_elements_and_unknown_extensions_only() -> None:
    sent = {
        "resourceType": "ServiceRequest",
        "id": "client-id",
        "meta": {"versionId": "9", "profile": ["http://example.org/p"]},
        "status": "active",
        "subject": {"reference": "Patient/1"},
        "note": [{"text": "call after 5pm"}],
        "extension": [
            {"url": "https://peerbridge.example/shared", "valueCode": "x"},
            {"url": "http://example.org/other", "valueString": "y"},
        ],
        "_status": {"extension": [{"url": "http://example.org/s", "valueString": "z"}]},
    }
    assert _KEEPING.split(sent) == {
        "meta": {"profile": ["http://example.org/p"]},
        "note": [{"text": "call after 5pm"}],
        "extension": [{"url": "http://example.org/other", "valueString": "y"}],
        "_status": {"extension": [{"url": "http://example.org/s", "valueString": "z"}]},
    }


def test_merge_lays_kept_elements_over_the_mapper_output() -> None:
    mapped = {
        "resourceType": "ServiceRequest",
        "id": "ours",
        "meta": {"versionId": "1", "security": [{"system": "s", "code": "R"}]},
        "code": {"text": "mapper's"},
        "extension": [{"url": "https://peerbridge.example/shared", "valueCode": "x"}],
    }
    kept = {
        "code": {"text": "as sent"},
        "meta": {"security": [{"system": "s", "code": "R"}, {"system": "s", "code": "V"}]},
        "extension": [{"url": "http://example.org/other", "valueString": "y"}],
    }
    assert merge(mapped, kept) == {
        "resourceType": "ServiceRequest",
        "id": "ours",
        "meta": {
            "versionId": "1",
            "security": [{"system": "s", "code": "R"}, {"system": "s", "code": "V"}],
        },
        "code": {"text": "as sent"},
        "extension": [
            {"url": "https://peerbridge.example/shared", "valueCode": "x"},
            {"url": "http://example.org/other", "valueString": "y"},
        ],
    }
    assert merge(mapped, {}) is mapped


def test_a_modifier_extension_anywhere_is_refused_by_its_path() -> None:
    sent = {
        "resourceType": "ServiceRequest",
        "note": [{"text": "x", "modifierExtension": [{"url": "http://x", "valueBoolean": True}]}],
    }
    with pytest.raises(Invalid) as refused:
        _KEEPING.split(sent)
    assert [d.field for d in refused.value.details] == [
        "ServiceRequest.note[0].modifierExtension[0]"
    ]


def test_a_modifier_the_mapper_honours_passes() -> None:
    keeping = Keeping("Consent", owned=frozenset(), modifier_extensions=frozenset({"http://ok"}))
    assert keeping.split({"modifierExtension": [{"url": "http://ok"}]}) == {
        "modifierExtension": [{"url": "http://ok"}]
    }


def test_implicit_rules_are_refused() -> None:
    with pytest.raises(Invalid) as refused:
        _KEEPING.split({"implicitRules": "http://example.org/rules"})
    assert refused.value.details[0].field == "ServiceRequest.implicitRules"


def test_verbatim_elements_are_kept_per_source_document() -> None:
    verbatim = with_kept(NOTHING_KEPT, "Task", {"note": [{"text": "n"}]})
    verbatim = with_kept(verbatim, "ServiceRequest", {"identifier": [{"value": "1"}]})
    assert kept_for(verbatim, "Task") == {"note": [{"text": "n"}]}
    assert kept_for(verbatim, "ServiceRequest") == {"identifier": [{"value": "1"}]}
    assert kept_for(NOTHING_KEPT, "Patient") == {}
