"""Domain rules for recorded deliveries (Procedure) and signed consent forms (DocumentReference)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api.domain.documents import (
    MAX_CONTENT_BYTES,
    check_content,
    form_id_in,
    source_reference_of,
)
from api.domain.errors import Invalid, TooLarge
from api.domain.procedures import (
    HCPCS_SYSTEM,
    SNOMED_SYSTEM,
    ProcedureStatus,
    check_delivery,
    delivered,
)
from api.domain.programs import DeliveryMode
from api.domain.referrals import Coding
from api.domain.sessions import (
    Attendance,
    AttendanceStatus,
    PeerSession,
    SessionFormat,
    billing_for,
)

START = datetime(2026, 10, 5, 14, 0, tzinfo=UTC)
H0038 = Coding(HCPCS_SYSTEM, "H0038")


def _fields(error: Invalid) -> list[str]:
    return [d.field for d in error.details]


def test_a_delivery_is_coded_with_h0038_or_a_snomed_procedure() -> None:
    check_delivery(
        status=ProcedureStatus.COMPLETED,
        codes=[H0038, Coding(SNOMED_SYSTEM, "711281004")],
        performed_start=None,
        performed_end=None,
        units=None,
    )
    with pytest.raises(Invalid) as refused:
        check_delivery(
            status=ProcedureStatus.COMPLETED,
            codes=[Coding(HCPCS_SYSTEM, "99213"), Coding("urn:local", "x")],
            performed_start=None,
            performed_end=None,
            units=None,
        )
    assert _fields(refused.value) == ["codes[0]", "codes[1]"]


@pytest.mark.parametrize(
    ("status", "minutes", "units", "fields"),
    [
        (ProcedureStatus.COMPLETED, 45, 3, []),
        (ProcedureStatus.COMPLETED, 45, 4, ["units"]),
        (ProcedureStatus.COMPLETED, -5, 1, ["performedEnd"]),
        (ProcedureStatus.NOT_DONE, 45, 1, ["units"]),
        (ProcedureStatus.IN_PROGRESS, None, 2, []),
        (ProcedureStatus.COMPLETED, None, 2, ["performedEnd"]),
    ],
)
def test_billed_units_fit_the_performed_period(
    status: ProcedureStatus, minutes: int | None, units: int, fields: list[str]
) -> None:
    end = START + timedelta(minutes=minutes) if minutes is not None else None
    try:
        check_delivery(
            status=status, codes=[H0038], performed_start=START, performed_end=end, units=units
        )
    except Invalid as error:
        assert _fields(error) == fields
    else:
        assert fields == []


def test_attendance_of_the_referral_adds_up_to_units_and_a_span() -> None:
    referral_id, other = uuid.uuid4(), uuid.uuid4()
    org, patient = uuid.uuid4(), uuid.uuid4()

    def session(offset_days: int, minutes: int) -> PeerSession:
        starts = START + timedelta(days=offset_days)
        return PeerSession(
            uuid.uuid4(), uuid.uuid4(), org, SessionFormat.GROUP, DeliveryMode.IN_PERSON,
            starts, starts + timedelta(minutes=minutes), (), None, None, 1, starts, starts,
        )  # fmt: skip

    def attended(s: PeerSession, referral: uuid.UUID, status: AttendanceStatus) -> Attendance:
        return Attendance(
            uuid.uuid4(), s.id, patient, org, referral, status, billing_for(s, status, False),
            False, None, 1, START, START,
        )  # fmt: skip

    first, second, missed, elsewhere = (
        session(0, 60),
        session(7, 30),
        session(14, 60),
        session(21, 90),
    )
    rows = [
        attended(first, referral_id, AttendanceStatus.ATTENDED),
        attended(second, referral_id, AttendanceStatus.ATTENDED),
        attended(missed, referral_id, AttendanceStatus.NO_SHOW),
        attended(elsewhere, other, AttendanceStatus.ATTENDED),
    ]
    found = delivered(referral_id, rows, [first, second, missed, elsewhere])
    assert (found.units, found.start, found.end) == (6, first.starts_at, second.ends_at)
    assert delivered(uuid.uuid4(), rows, [first]).start is None


def test_a_consent_form_is_a_known_type_linked_or_inline_within_the_cap() -> None:
    check_content("application/pdf", "Signed form", "https://clinic.example.org/f.pdf", None)
    check_content("image/png", None, None, b"\x89PNG")
    with pytest.raises(TooLarge):
        check_content("application/pdf", None, None, b"x" * (MAX_CONTENT_BYTES + 1))
    with pytest.raises(Invalid) as refused:
        check_content("application/zip", " ", "ftp://x", b"data")
    assert _fields(refused.value) == ["contentType", "url", "url", "title"]


def test_a_consent_source_names_a_recorded_form_or_something_else() -> None:
    form_id = uuid.uuid4()
    assert form_id_in(source_reference_of(form_id)) == form_id
    for other in (None, "", "https://clinic.example.org/f.pdf", "DocumentReference/signed-1"):
        assert form_id_in(other) is None
