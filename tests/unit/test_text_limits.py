"""Free-text limits (`api.domain.text`): one table, listed in the README, checked by every use
case that stores text — before it touches the database — naming the field it refuses."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from api.domain import text
from api.domain.consents import DataClass, Purpose
from api.domain.errors import Invalid
from api.domain.locations import Address
from api.domain.organizations import OrganizationKind
from api.domain.patients import PatientIdentifier
from api.domain.principal import Principal
from api.domain.procedures import HCPCS_SYSTEM, PEER_SERVICES_HCPCS, ProcedureStatus
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.referrals import Coding, Transition
from api.domain.scopes import parse_scopes
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.domain.supporters import Certification, CertificationStatus, CertificationSubtype
from api.services import (
    consent_forms,
    consent_revocations,
    consents,
    locations,
    organizations,
    patients,
    procedures,
    programs,
    referrals,
    sessions,
    supporters,
)

CALLER = Principal(
    client_id="client",
    organization_id=uuid.uuid4(),
    scopes=parse_scopes(["system/*.cruds"]),
    subject="client",
)
NOW = datetime.now(UTC)


class _NoDatabase:
    """A unit of work that fails any use: the checks must refuse before I/O."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the use case reached the database ({name}) before refusing")


def test_a_value_at_the_limit_passes_and_one_past_it_is_refused() -> None:
    assert text.text_problems("name", "x" * text.NAME, text.NAME) == []
    (problem,) = text.text_problems("name", "x" * (text.NAME + 1), text.NAME)
    assert (problem.field, problem.message) == ("name", f"at most {text.NAME} characters")
    assert text.text_problems("name", None, text.NAME) == []


@pytest.mark.parametrize(
    ("value", "reason"), [("a\x00b", "NUL"), ("a\ud800b", "surrogate"), ("\udfff", "surrogate")]
)
def test_nul_and_unpaired_surrogates_are_refused_whatever_the_length(
    value: str, reason: str
) -> None:
    (problem,) = text.text_problems("note", value, text.REASON)

    assert reason in problem.message


def test_lengths_count_characters_not_bytes() -> None:
    assert text.text_problems("name", "\U0001f600" * text.NAME, text.NAME) == []


def test_the_readme_lists_every_limit_with_its_value() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()

    for name, (limit, fields) in text.LIMITS.items():
        assert f"| `{name}` | {limit} | {fields} |" in readme, name


def _long(limit: int) -> str:
    return "x" * (limit + 1)


def _coding(**fields: str) -> Coding:
    return Coding(**{"system": HCPCS_SYSTEM, "code": PEER_SERVICES_HCPCS, **fields})


def _cert(**fields: str) -> Certification:
    values = {"type": "CPS", "issuing_body": "Board", "jurisdiction": "US-PA", "number": "1"}
    return Certification(
        subtype=CertificationSubtype.MENTAL_HEALTH,
        status=CertificationStatus.ACTIVE,
        issued_on=date(2024, 1, 1),
        expires_on=None,
        last_verified_on=None,
        **{**values, **fields},  # type: ignore[arg-type]
    )


def _patient(**fields: Any) -> patients.RegisterPatient:
    return patients.RegisterPatient(
        **{"identifiers": (), "given_name": "Ada", "family_name": "L", **fields}
    )


UseCase = Callable[[Any], Awaitable[object]]
_ID = uuid.uuid4()

CASES: list[tuple[str, UseCase, str]] = [
    *(
        (
            field,
            lambda uow, f=fields: patients.register_patient(uow, CALLER, _patient(**f)),
            field,
        )
        for field, fields in [
            ("givenName", {"given_name": _long(text.NAME)}),
            ("familyName", {"family_name": _long(text.NAME)}),
            ("phone", {"phone": _long(text.SHORT)}),
            ("email", {"email": _long(text.EMAIL)}),
            ("preferredLanguage", {"preferred_language": _long(text.LANGUAGE)}),
            (
                "identifiers[0].value",
                {"identifiers": (PatientIdentifier("urn:x", _long(text.SHORT)),)},
            ),
            (
                "identifiers[0].system",
                {"identifiers": (PatientIdentifier(_long(text.URI), "1"),)},
            ),
        ]
    ),
    (
        "program description",
        lambda uow: programs.upsert_program(
            uow,
            CALLER,
            programs.UpsertPeerProgram(
                name="P", kind=ProgramKind.SUPPORT_GROUP, description=_long(text.DESCRIPTION)
            ),
        ),
        "description",
    ),
    (
        "program eligibility",
        lambda uow: programs.upsert_program(
            uow,
            CALLER,
            programs.UpsertPeerProgram(
                name="P", kind=ProgramKind.SUPPORT_GROUP, eligibility=_long(text.DESCRIPTION)
            ),
        ),
        "eligibility",
    ),
    (
        "program name",
        lambda uow: programs.upsert_program(
            uow,
            CALLER,
            programs.UpsertPeerProgram(name=_long(text.NAME), kind=ProgramKind.SUPPORT_GROUP),
        ),
        "name",
    ),
    (
        "program language",
        lambda uow: programs.upsert_program(
            uow,
            CALLER,
            programs.UpsertPeerProgram(
                name="P", kind=ProgramKind.SUPPORT_GROUP, languages=("en", _long(text.LANGUAGE))
            ),
        ),
        "languages[1]",
    ),
    (
        "supporter name",
        lambda uow: supporters.upsert_supporter(
            uow,
            CALLER,
            supporters.UpsertPeerSupporter(display_name=_long(text.NAME), max_caseload=1),
        ),
        "displayName",
    ),
    (
        "certification number",
        lambda uow: supporters.upsert_supporter(
            uow,
            CALLER,
            supporters.UpsertPeerSupporter(
                display_name="S", max_caseload=1, certifications=(_cert(number=_long(200)),)
            ),
        ),
        "certifications[0].number",
    ),
    (
        "referral reason",
        lambda uow: referrals.create_referral(
            uow,
            CALLER,
            referrals.CreateReferral(_ID, _ID, reason_text=_long(text.REASON)),
        ),
        "reasonText",
    ),
    (
        "referral reason code display",
        lambda uow: referrals.escalate_referral(
            uow,
            CALLER,
            referrals.EscalateReferral(
                _ID, _ID, reason_codes=(_coding(display=_long(text.REASON)),)
            ),
        ),
        "reasonCodes[0].display",
    ),
    (
        "transition reason",
        lambda uow: referrals.transition_referral(
            uow, CALLER, _ID, Transition.REJECT, reason=_long(text.REASON)
        ),
        "reason",
    ),
    (
        "consent source",
        lambda uow: consents.grant_consent(
            uow,
            CALLER,
            consents.GrantConsent(
                _ID,
                _ID,
                frozenset({Purpose.TREATMENT}),
                frozenset({DataClass.REFERRAL}),
                source_reference=_long(text.URI),
            ),
        ),
        "sourceReference",
    ),
    (
        "revocation reason",
        lambda uow: consents.revoke_consent(uow, CALLER, _ID, reason=_long(text.REASON)),
        "reason",
    ),
    (
        "revocation reason, all of a patient's consents",
        lambda uow: consent_revocations.revoke_consents(
            uow,
            CALLER,
            consent_revocations.RevokeConsents(_ID, _ID, reason="\ud800"),
        ),
        "reason",
    ),
    (
        "session topic",
        lambda uow: sessions.record_session(
            uow,
            CALLER,
            sessions.RecordSession(
                _ID,
                SessionFormat.GROUP,
                DeliveryMode.IN_PERSON,
                NOW - timedelta(hours=2),
                NOW - timedelta(hours=1),
                topic=_long(text.REASON),
            ),
        ),
        "topic",
    ),
    (
        "attendance note",
        lambda uow: sessions.record_attendance(
            uow,
            CALLER,
            sessions.RecordAttendance(_ID, _ID, AttendanceStatus.ATTENDED, note="\x00" + "x" * 10),
        ),
        "note",
    ),
    (
        "consent form title",
        lambda uow: consent_forms.record_consent_form(
            uow,
            CALLER,
            consent_forms.RecordConsentForm(
                _ID, "application/pdf", title=_long(text.SHORT), url="https://x.example/f.pdf"
            ),
        ),
        "title",
    ),
    (
        "consent form url",
        lambda uow: consent_forms.record_consent_form(
            uow,
            CALLER,
            consent_forms.RecordConsentForm(
                _ID, "application/pdf", url="https://x.example/" + _long(text.URI)
            ),
        ),
        "url",
    ),
    (
        "procedure code display",
        lambda uow: procedures.record_procedure(
            uow,
            CALLER,
            procedures.RecordProcedure(
                _ID, ProcedureStatus.COMPLETED, (_coding(display=_long(text.REASON)),)
            ),
        ),
        "codes[0].display",
    ),
    (
        "location description",
        lambda uow: locations.upsert_location(
            uow,
            CALLER,
            locations.UpsertLocation(name="Hall", description=_long(text.DESCRIPTION)),
        ),
        "description",
    ),
    (
        "location address line",
        lambda uow: locations.upsert_location(
            uow,
            CALLER,
            locations.UpsertLocation(name="Hall", address=Address(lines=("1", _long(200)))),
        ),
        "address.line[1]",
    ),
    (
        "organization name",
        lambda uow: organizations.create_organization(
            uow, name=_long(text.NAME), kind=OrganizationKind.CLINIC
        ),
        "name",
    ),
]


@pytest.mark.parametrize(("case", "use_case", "field"), CASES, ids=[c[0] for c in CASES])
async def test_every_use_case_refuses_overlong_text_naming_the_field(
    case: str, use_case: UseCase, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await use_case(_NoDatabase())

    assert field in [d.field for d in refused.value.details], refused.value.details
