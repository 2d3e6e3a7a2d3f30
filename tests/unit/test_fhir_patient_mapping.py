"""A FHIR Patient is kept as sent; the columns (current name, best phone and email, preferred
language, birth date) are derived from it, and what PeerBridge cannot honour is refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from patient_fidelity import ig_patients, rich_patient

from api.domain.errors import Invalid
from api.domain.patients import Patient
from api.integrations.fhir.resources.patient_facts import (
    best_contact,
    birth_date,
    current_name,
    preferred_language,
)
from api.integrations.fhir.resources.patients import (
    register_patient_command,
    to_fhir_patient,
)
from api.services.patients import RegisterPatient

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
CLINIC = uuid.uuid4()


def _record(command: RegisterPatient) -> Patient:
    return Patient(
        uuid.uuid4(),
        CLINIC,
        command.identifiers,
        command.given_name,
        command.family_name,
        command.birth_date,
        command.gender,
        command.phone,
        command.email,
        command.preferred_language,
        3,
        NOW,
        NOW,
        command.verbatim,
    )


def _problems(error: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [detail.field for detail in error.value.details]


def test_the_current_name_is_the_one_in_use_not_the_first_one() -> None:
    sent = ig_patients()["sdoh-clinicalcare/pat-53234"]
    assert current_name(sent["name"], NOW) == ("COLIN V.", "BAXTER")
    assert current_name(rich_patient()["name"], NOW) == ("María José", "Núñez Ortega")


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([{"use": "old", "family": "A", "given": ["a"]}, {"family": "B", "given": ["b"]}], "B"),
        ([{"family": "A", "given": ["a"]}, {"use": "usual", "family": "B", "given": ["b"]}], "B"),
        ([{"family": "A", "given": ["a"], "period": {"end": "2026-11"}}], "A"),  # until Nov's end
        ([{"family": "A", "given": ["a"], "period": {"end": "2027"}}], "A"),
        ([{"family": "A", "given": ["a"], "period": {"end": "2026-11-29T13:00:00Z"}}], "A"),
        ([{"family": "A", "given": ["a"], "period": {"end": "2026-11-28"}}, {"text": "B"},
          {"family": "C", "given": ["c"]}], "C"),
    ],
)  # fmt: skip
def test_names_ended_or_old_are_not_current(names: list[dict[str, Any]], expected: str) -> None:
    assert current_name(names, NOW)[1] == expected


@pytest.mark.parametrize(
    "names",
    [
        [],
        [{"family": "A", "given": ["a"], "period": {"end": "2026-11-29T11:00:00Z"}}],
        [{"text": "Jo Doe"}],
        [{"family": "Doe"}],
    ],
)
def test_without_a_current_given_and_family_name_the_patient_is_refused(
    names: list[dict[str, Any]],
) -> None:
    with pytest.raises(Invalid) as refused:
        current_name(names, NOW)
    assert _problems(refused) == ["Patient.name"]


def test_contacts_and_language_are_the_best_current_ones() -> None:
    sent = rich_patient()
    assert best_contact(sent["telecom"], "phone", NOW) == "+1 555 0102"
    assert best_contact(sent["telecom"], "email", NOW) == "majo@example.org"
    assert best_contact(sent["telecom"], "fax", NOW) is None
    ended = [{"system": "phone", "value": "1", "period": {"end": "2020-01-01"}}]
    assert best_contact(ended, "phone", NOW) is None
    assert preferred_language(sent["communication"]) == "es-MX"
    assert preferred_language(sent["communication"][:1]) == "en"
    assert preferred_language([{"language": {"text": "Klingon"}}]) is None


def test_a_partial_birth_date_is_kept_without_a_date_column() -> None:
    assert birth_date("1987-02-20") is not None
    assert birth_date("1987") is None
    assert birth_date("1987-02") is None
    command = register_patient_command({**rich_patient(), "birthDate": "1987-02"}, CLINIC, NOW)
    assert to_fhir_patient(_record(command))["birthDate"] == "1987-02"


@pytest.mark.parametrize("name", sorted(ig_patients()))
def test_the_mapper_returns_what_was_sent_with_the_server_parts(name: str) -> None:
    sent = ig_patients()[name]
    record = _record(register_patient_command(sent, CLINIC, NOW))
    returned = to_fhir_patient(record)
    assert returned.pop("managingOrganization") == {"reference": f"Organization/{CLINIC}"}
    assert returned.pop("id") == str(record.id)
    assert returned.pop("meta") == {
        **sent["meta"],
        "versionId": "3",
        "lastUpdated": "2026-11-29T12:00:00Z",
    }
    assert returned == {k: v for k, v in sent.items() if k not in ("id", "meta")}


@pytest.mark.parametrize(
    ("elements", "where"),
    [
        ({"active": False}, "Patient.active"),
        ({"link": [{"other": {"reference": "Patient/x"}, "type": "replaced-by"}]},
         "Patient.link[0].type"),
        ({"managingOrganization": {"reference": f"Organization/{uuid.uuid4()}"}},
         "Patient.managingOrganization"),
        ({"birthDate": "2026-12"}, "Patient.birthDate"),
        ({"identifier": [{"system": "urn:x", "value": "1"}, {"value": "2"}]},
         "Patient.identifier[1]"),
    ],
)  # fmt: skip
def test_what_the_rules_cannot_honour_is_refused(elements: dict[str, Any], where: str) -> None:
    with pytest.raises(Invalid) as refused:
        register_patient_command({**rich_patient(), **elements}, CLINIC, NOW)
    assert _problems(refused) == [where]


def test_a_link_to_another_record_that_does_not_replace_this_one_is_kept() -> None:
    link = [{"other": {"reference": "RelatedPerson/x"}, "type": "seealso"}]
    command = register_patient_command({**rich_patient(), "link": link}, CLINIC, NOW)
    assert to_fhir_patient(_record(command))["link"] == link
