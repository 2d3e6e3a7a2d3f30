"""Who may be assigned (certification and caseload), H0038 billing, outcome instruments."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from api.domain.errors import Invalid, SupporterUnavailable
from api.domain.outcomes import Instrument, OutcomeMeasure, check_answers
from api.domain.programs import DeliveryMode
from api.domain.sessions import AttendanceStatus, PeerSession, SessionFormat, billing_for
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    PeerSupporter,
    check_assignable,
)

TODAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def cert(
    expires: date | None,
    status: CertificationStatus = CertificationStatus.ACTIVE,
    issued: date = date(2024, 1, 1),
) -> Certification:
    return Certification(
        "Certified Peer Specialist",
        CertificationSubtype.MENTAL_HEALTH,
        "State Certification Board",
        "US-PA",
        "CPS-1",
        status,
        issued,
        expires,
        None,
    )


def supporter(*certs: Certification, max_caseload: int = 3, active: bool = True) -> PeerSupporter:
    return PeerSupporter(
        uuid.uuid4(),
        uuid.uuid4(),
        "Sam Rivera",
        (),
        ("en",),
        certs,
        None,
        None,
        max_caseload,
        active,
        1,
        NOW,
        NOW,
    )


def test_a_supporter_with_a_valid_certification_and_free_caseload_is_assignable() -> None:
    check_assignable(supporter(cert(TODAY)), 2, TODAY)  # expires today: still valid today


@pytest.mark.parametrize(
    ("certs", "message"),
    [
        ((cert(TODAY - timedelta(days=1)),), "certification"),
        ((cert(None, CertificationStatus.SUSPENDED),), "certification"),
        ((cert(None, issued=TODAY + timedelta(days=1)),), "certification"),
        ((), "certification"),
    ],
)
def test_no_valid_certification_refuses_assignment(
    certs: tuple[Certification, ...], message: str
) -> None:
    with pytest.raises(SupporterUnavailable, match=message):
        check_assignable(supporter(*certs), 0, TODAY)


def test_one_valid_certification_among_expired_ones_is_enough() -> None:
    check_assignable(supporter(cert(TODAY - timedelta(days=400)), cert(None)), 0, TODAY)


def test_a_full_caseload_refuses_assignment() -> None:
    with pytest.raises(SupporterUnavailable, match="caseload"):
        check_assignable(supporter(cert(None), max_caseload=3), 3, TODAY)


def test_an_inactive_supporter_is_not_assignable() -> None:
    with pytest.raises(SupporterUnavailable, match="not active"):
        check_assignable(supporter(cert(None), active=False), 0, TODAY)


def session(minutes: int, fmt: SessionFormat) -> PeerSession:
    return PeerSession(
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        fmt,
        DeliveryMode.IN_PERSON,
        NOW,
        NOW + timedelta(minutes=minutes),
        (),
        None,
        None,
        1,
        NOW,
        NOW,
    )


def test_billing_counts_whole_15_minute_units_with_group_and_sud_modifiers() -> None:
    group = billing_for(session(95, SessionFormat.GROUP), AttendanceStatus.ATTENDED, True)
    assert (group.units, group.hcpcs_code, group.modifiers) == (6, "H0038", ("HQ", "HF"))
    single = billing_for(session(50, SessionFormat.ONE_ON_ONE), AttendanceStatus.ATTENDED, False)
    assert (single.units, single.modifiers) == (3, ())
    no_show = billing_for(session(60, SessionFormat.GROUP), AttendanceStatus.NO_SHOW, False)
    assert no_show.units == 0


def measure(answers: tuple[int, ...]) -> OutcomeMeasure:
    return OutcomeMeasure(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), None, Instrument.PHQ9, NOW, answers, 1, NOW, NOW
    )


def test_phq9_total_and_item_9_safety_signal() -> None:
    assert measure((1, 1, 1, 1, 1, 1, 1, 1, 0)).total == 8
    assert not measure((3, 3, 3, 3, 3, 3, 3, 3, 0)).safety_signal
    assert measure((0, 0, 0, 0, 0, 0, 0, 0, 1)).safety_signal


def test_answers_are_checked_against_the_instrument() -> None:
    check_answers(Instrument.GAD7, (0, 1, 2, 3, 0, 1, 2))
    with pytest.raises(Invalid, match="7 items"):
        check_answers(Instrument.GAD7, (0, 1))
    with pytest.raises(Invalid) as raised:
        check_answers(Instrument.PHQ9, (0, 0, 0, 4, 0, 0, 0, 0, -1))
    assert [d.field for d in raised.value.details] == ["itemAnswers[3]", "itemAnswers[8]"]
