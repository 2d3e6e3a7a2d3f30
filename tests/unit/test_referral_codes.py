"""The services a referral may order: one table in code, the same one in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.domain.errors import Invalid
from api.domain.referrals import (
    DEFAULT_SERVICE,
    PEER_SUPPORT_SERVICES,
    SNOMED_SYSTEM,
    Coding,
    check_service_code,
)
from api.integrations.fhir.rest.conditional_create import parse_criteria
from api.integrations.fhir.rest.operation_outcomes import BadRequest

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_exactly_the_services_in_code() -> None:
    rows = re.findall(r"^\| (\d{6,18}) \| ([^|]+?) \|$", README.read_text(), re.MULTILINE)
    assert dict(rows) == PEER_SUPPORT_SERVICES


def test_the_default_services_are_in_the_table() -> None:
    for coding in DEFAULT_SERVICE.values():
        assert PEER_SUPPORT_SERVICES[coding.code] == coding.display


def test_a_food_pantry_order_is_refused_naming_code() -> None:
    food_pantry = Coding(SNOMED_SYSTEM, "467771000124109", "Food pantry program application")
    with pytest.raises(Invalid) as refused:
        check_service_code([food_pantry])
    assert [d.field for d in refused.value.details] == ["code"]
    assert "peer-support" in refused.value.details[0].message
    # A peer-support coding beside another one is enough; the same code in another system is not.
    check_service_code([food_pantry, Coding(SNOMED_SYSTEM, "711281004")])
    with pytest.raises(Invalid):
        check_service_code([Coding("http://loinc.org", "461481000124109")])


@pytest.mark.parametrize(
    "criteria",
    ["identifier=a|b", "?identifier=a|b", "ServiceRequest?identifier=b", " identifier=|b "],
)
def test_conditional_criteria_parse_as_a_search(criteria: str) -> None:
    request = parse_criteria("ServiceRequest", criteria, "If-None-Exist")
    assert [f.name for f in request.filters] == ["identifier"]
    assert request.count == 2


@pytest.mark.parametrize(
    "kind, criteria",
    [
        ("ServiceRequest", "status=active"),
        ("ServiceRequest", "identifier=a&status=active"),
        ("ServiceRequest", "identifier="),
        ("ServiceRequest", ""),
        ("ServiceRequest", "Task?identifier=a"),
        ("ServiceRequest", "identifier:exact=a"),
        ("Task", "identifier=a"),
        ("Consent", "patient=Patient/1"),
    ],
)
def test_conditional_criteria_outside_the_table_are_refused(kind: str, criteria: str) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_criteria(kind, criteria, "Bundle.entry[2].request.ifNoneExist")
    assert [d.field for d in refused.value.details] == ["Bundle.entry[2].request.ifNoneExist"]
