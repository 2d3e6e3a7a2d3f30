"""docs/consent-classes.md and the code read a Consent's classes through the same table, and
that table keeps substance use behind explicit substance-use codes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.domain.consents import DataClass
from api.domain.errors import Invalid
from api.integrations.fhir.resources.consent_provisions import DATA_CLASSES_OF, consent_terms

DOC = Path(__file__).parents[2] / "docs" / "consent-classes.md"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RECIPIENT = "6f1d2c3b-0000-4000-8000-000000000001"


def test_the_documented_table_is_the_table_the_code_reads() -> None:
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| ([a-z_, ]+) \|$", DOC.read_text(), re.M)
    documented = {(s, c): frozenset(DataClass(v) for v in cls.split(", ")) for s, c, cls in rows}
    assert documented == DATA_CLASSES_OF


def test_only_substance_use_codes_cover_substance_use() -> None:
    covering = {code for (_, code), classes in DATA_CLASSES_OF.items() if DataClass.SUBSTANCE_USE in classes}  # noqa: E501
    assert covering == {"substance_use", "42CFRPart2", "SUD", "ETH", "ETHUD", "OPIOIDUD"}


def _consent(**provision: object) -> dict[str, object]:
    return {
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},  # noqa: E501
                    "reference": {"reference": f"Organization/{RECIPIENT}"},
                }
            ],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "CAREMGT"}],  # noqa: E501
            **provision,
        }
    }


def test_classes_are_the_union_of_class_labels_and_nested_permits() -> None:
    terms = consent_terms(
        _consent(
            **{"class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Encounter"}]},
            securityLabel=[
                {"system": ACT_CODE, "code": "MH"},
                {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
            ],
            provision=[{"type": "permit", "securityLabel": [{"system": ACT_CODE, "code": "SUD"}]}],
        )
    )
    assert terms.data_classes == {
        DataClass.SESSIONS, DataClass.REFERRAL, DataClass.OUTCOMES, DataClass.SUBSTANCE_USE
    }  # fmt: skip
    assert str(terms.recipient_organization_id) == RECIPIENT


def test_a_period_given_to_the_day_lasts_through_its_last_day() -> None:
    terms = consent_terms(
        _consent(
            **{"class": [{"system": ACT_CODE, "code": "DEMOCAT"}]},
            period={"start": "2026-05-01", "end": "2026-05-31"},
        )
    )
    assert terms.period_start is not None and terms.period_end is not None
    assert terms.period_start.isoformat() == "2026-05-01T00:00:00+00:00"
    assert terms.period_end.isoformat() == "2026-06-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("provision", "expression"),
    [
        ({"class": [{"system": ACT_CODE, "code": "PSYTHPN"}]}, "Consent.provision.class[0]"),
        (
            {"securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]},  # noqa: E501
            "Consent.provision.class",
        ),
        (
            {"provision": [{"type": "permit", "provision": [{"type": "deny"}]}]},
            "Consent.provision.provision[0].provision[0].type",
        ),
    ],
)
def test_what_the_table_cannot_map_is_refused_naming_it(
    provision: dict[str, object], expression: str
) -> None:
    with pytest.raises(Invalid) as refused:
        consent_terms(_consent(**provision))
    assert [d.field for d in refused.value.details] == [expression]
