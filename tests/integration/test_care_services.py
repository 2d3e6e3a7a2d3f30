"""Patients, consents, programs, supporters, sessions, attendance, outcomes, audit and metrics
through the services on real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from network import MRN_SYSTEM, Network, consent_to, register_patient

from api.domain.consents import DataClass, Purpose
from api.domain.errors import (
    Conflict,
    ConsentRequired,
    ConsentRevoked,
    Forbidden,
    Invalid,
    NotFound,
    VersionConflict,
)
from api.domain.outcomes import Instrument
from api.domain.patients import PatientIdentifier
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.referrals import Transition
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.services import (
    audit_trail,
    consents,
    metrics,
    outcomes,
    patients,
    programs,
    referrals,
    sessions,
)
from api.services.filters import ProgramFilter
from api.services.pagination import PageRequest


async def referral_in_progress(network: Network) -> referrals.ReferralView:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
        ),
    )
    for move in (Transition.ACCEPT, Transition.START):
        view = await referrals.transition_referral(
            network.uow(), network.as_peer, view.referral.id, move
        )
    return view


async def test_the_performer_sees_a_consented_patient_and_a_stranger_does_not(
    network: Network,
) -> None:
    (mine,) = await patients.get_patients(network.uow(), network.as_clinic, [network.patient.id])
    (theirs,) = await patients.get_patients(network.uow(), network.as_peer, [network.patient.id])
    (stranger,) = await patients.get_patients(
        network.uow(), network.as_stranger, [network.patient.id]
    )
    assert mine == network.patient and theirs == network.patient
    # An organization with no relationship to the patient may not learn that they exist.
    assert isinstance(stranger, NotFound)
    assert str(stranger) == f"Patient {network.patient.id} not found"


async def test_an_organization_that_knows_the_patient_is_told_why_it_may_not_see_them(
    network: Network,
) -> None:
    await consent_to(network, network.patient.id, network.stranger, DataClass.REFERRAL)
    (result,) = await patients.get_patients(
        network.uow(), network.as_stranger, [network.patient.id]
    )
    assert isinstance(result, ConsentRequired)


async def test_revocation_hides_the_patient_on_the_very_next_request(network: Network) -> None:
    await consents.revoke_consent(
        network.uow(), network.as_clinic, network.consent.id, reason="withdrawn"
    )
    (result,) = await patients.get_patients(network.uow(), network.as_peer, [network.patient.id])
    assert isinstance(result, ConsentRevoked) and result.code == "CONSENT_REVOKED"


async def test_every_patient_read_and_denial_is_audited(network: Network) -> None:
    await patients.get_patients(network.uow(), network.as_peer, [network.patient.id])
    await patients.get_patients(network.uow(), network.as_stranger, [network.patient.id])
    events = await audit_trail.list_audit_events(
        network.uow(), network.as_clinic, network.patient.id
    )
    reads = [
        (e.record.organization_id, e.record.outcome.value, e.record.consent_ids)
        for e in events
        if e.record.operation == "readPatient"
    ]
    assert (network.peer.id, "success", (network.consent.id,)) in reads
    assert (network.stranger.id, "denied", ()) in reads
    # The peer organization sees only its own accesses.
    own = await audit_trail.list_audit_events(network.uow(), network.as_peer, network.patient.id)
    assert {e.record.organization_id for e in own} == {network.peer.id}


async def test_a_duplicate_identifier_is_a_conflict_only_within_the_organization(
    network: Network,
) -> None:
    mrn = PatientIdentifier(MRN_SYSTEM, network.patient.identifiers[0].value)
    with pytest.raises(Conflict):
        await register_patient(network, mrn=mrn.value)
    found = await patients.find_patients(network.uow(), network.as_peer, mrn)
    assert [p.id for p in found] == [network.patient.id]
    # Another organization's record is not revealed by refusing the stranger's own one.
    assert await patients.find_patients(network.uow(), network.as_stranger, mrn) == []
    theirs = await patients.register_patient(
        network.uow(),
        network.as_stranger,
        patients.RegisterPatient(identifiers=(mrn,), given_name="Other", family_name="Person"),
    )
    found = await patients.find_patients(network.uow(), network.as_stranger, mrn)
    assert [p.id for p in found] == [theirs.id]


async def test_only_the_holding_organization_records_consent(network: Network) -> None:
    command = consents.GrantConsent(
        patient_id=network.patient.id,
        recipient_organization_id=network.stranger.id,
        purposes=frozenset({Purpose.TREATMENT}),
        data_classes=frozenset({DataClass.REFERRAL}),
    )
    with pytest.raises(Forbidden):
        await consents.grant_consent(network.uow(), network.as_peer, command)
    with pytest.raises(Invalid) as raised:
        await consents.grant_consent(
            network.uow(),
            network.as_clinic,
            consents.GrantConsent(
                patient_id=network.patient.id,
                recipient_organization_id=network.stranger.id,
                purposes=frozenset(),
                data_classes=frozenset(),
                period_start=datetime.now(UTC),
                period_end=datetime.now(UTC) - timedelta(days=1),
            ),
        )
    assert {d.field for d in raised.value.details} == {"purposes", "dataClasses", "periodEnd"}


async def test_consents_are_visible_to_their_parties_only(network: Network) -> None:
    assert [
        c.id
        for c in await consents.list_consents(network.uow(), network.as_peer, network.patient.id)
    ] == [network.consent.id]
    with pytest.raises(NotFound):
        await consents.list_consents(network.uow(), network.as_stranger, network.patient.id)
    (unrelated,) = await consents.get_consents(
        network.uow(), network.as_stranger, [network.consent.id]
    )
    assert isinstance(unrelated, NotFound)
    # Once the patient consents to it too, the stranger knows the patient: it is told that the
    # peer's consent is not addressed to it.
    own = await consent_to(network, network.patient.id, network.stranger, DataClass.REFERRAL)
    listed = await consents.list_consents(network.uow(), network.as_stranger, network.patient.id)
    assert [c.id for c in listed] == [own.id]
    (related,) = await consents.get_consents(
        network.uow(), network.as_stranger, [network.consent.id]
    )
    assert isinstance(related, Forbidden)
    revoked = await consents.revoke_consent(
        network.uow(), network.as_peer, network.consent.id, expected_version=1
    )
    assert revoked.revoked and revoked.version == 2
    with pytest.raises(Forbidden):
        await consents.revoke_consent(network.uow(), network.as_stranger, network.consent.id)


async def test_programs_belong_to_their_organization_and_updates_need_the_version(
    network: Network,
) -> None:
    command = programs.UpsertPeerProgram(
        id=network.program.id,
        expected_version=1,
        name="Recovery Circle (Tuesdays)",
        kind=ProgramKind.SUPPORT_GROUP,
        delivery_modes=(DeliveryMode.VIRTUAL,),
    )
    updated = await programs.upsert_program(network.uow(), network.as_peer, command)
    assert updated.version == 2 and updated.delivery_modes == (DeliveryMode.VIRTUAL,)
    with pytest.raises(VersionConflict):
        await programs.upsert_program(network.uow(), network.as_peer, command)
    with pytest.raises(Forbidden):
        await programs.upsert_program(
            network.uow(),
            network.as_stranger,
            programs.UpsertPeerProgram(
                id=network.program.id,
                expected_version=2,
                name="Taken",
                kind=ProgramKind.SUPPORT_GROUP,
            ),
        )
    with pytest.raises(Forbidden):
        await programs.upsert_program(
            network.uow(),
            network.as_clinic,
            programs.UpsertPeerProgram(name="Clinic group", kind=ProgramKind.SUPPORT_GROUP),
        )
    page = await programs.list_programs(
        network.uow(),
        network.as_clinic,
        ProgramFilter(kinds=frozenset({ProgramKind.SUPPORT_GROUP})),
        PageRequest(),
    )
    assert [p.id for p in page.items] == [network.program.id]


async def test_sessions_attendance_and_billing_for_a_referred_participant(
    network: Network,
) -> None:
    view = await referral_in_progress(network)
    start = datetime.now(UTC) - timedelta(hours=3)
    session = await sessions.record_session(
        network.uow(),
        network.as_peer,
        sessions.RecordSession(
            program_id=network.program.id,
            format=SessionFormat.GROUP,
            delivery_mode=DeliveryMode.IN_PERSON,
            starts_at=start,
            ends_at=start + timedelta(minutes=90),
            facilitator_ids=(network.supporter.id,),
        ),
    )
    attendance = await sessions.record_attendance(
        network.uow(),
        network.as_peer,
        sessions.RecordAttendance(
            session_id=session.id,
            patient_id=network.patient.id,
            status=AttendanceStatus.ATTENDED,
            referral_id=view.referral.id,
            note="engaged well",
        ),
    )
    assert (attendance.billing.units, attendance.billing.modifiers) == (6, ("HQ",))
    corrected = await sessions.record_attendance(
        network.uow(),
        network.as_peer,
        sessions.RecordAttendance(
            session_id=session.id, patient_id=network.patient.id, status=AttendanceStatus.NO_SHOW
        ),
    )
    assert corrected.id == attendance.id and corrected.version == 2
    assert corrected.billing.units == 0
    (clinic_view,) = await sessions.attendance_for_patients(
        network.uow(), network.as_clinic, [network.patient.id]
    )
    assert clinic_view == [], "the clinic holds no consent for the peer's session records"
    (peer_view,) = await sessions.attendance_for_sessions(
        network.uow(), network.as_peer, [session.id]
    )
    assert [a.id for a in peer_view] == [attendance.id]


async def test_an_organization_cannot_record_care_for_a_participant_it_does_not_serve(
    network: Network,
) -> None:
    stranger_patient = await register_patient(network)
    # The peer has no relationship with this participant: it may not learn they exist.
    with pytest.raises(NotFound):
        await outcomes.record_outcome_measure(
            network.uow(),
            network.as_peer,
            outcomes.RecordOutcomeMeasure(
                patient_id=stranger_patient.id,
                instrument=Instrument.GAD7,
                item_answers=(0, 1, 0, 1, 0, 1, 0),
            ),
        )
    with pytest.raises(Invalid):
        await sessions.record_session(
            network.uow(),
            network.as_peer,
            sessions.RecordSession(
                program_id=network.program.id,
                format=SessionFormat.GROUP,
                delivery_mode=DeliveryMode.PHONE,
                starts_at=datetime.now(UTC),
                ends_at=datetime.now(UTC) - timedelta(minutes=5),
            ),
        )


async def test_a_positive_phq9_item_9_raises_a_safety_signal_event(network: Network) -> None:
    view = await referral_in_progress(network)
    measure = await outcomes.record_outcome_measure(
        network.uow(),
        network.as_peer,
        outcomes.RecordOutcomeMeasure(
            patient_id=network.patient.id,
            instrument=Instrument.PHQ9,
            item_answers=(2, 2, 1, 1, 0, 1, 1, 0, 1),
            referral_id=view.referral.id,
        ),
    )
    assert measure.total == 9 and measure.safety_signal
    async with network.pool.acquire() as conn:
        events = await conn.fetch(
            "SELECT event_type FROM outbox WHERE aggregate_id = $1", measure.id
        )
        signals = await conn.fetch(
            "SELECT organization_ids FROM outbox WHERE aggregate_id = $1 "
            "AND event_type = 'SafetySignalRaised'",
            view.referral.id,
        )
    # The measure's own event; the signal is on the referral, to both organizations.
    assert [e["event_type"] for e in events] == ["OutcomeMeasureRecorded"]
    assert [set(s["organization_ids"]) for s in signals] == [
        {network.clinic.id, network.peer.id}
    ]
    (seen,) = await outcomes.outcomes_for_patients(
        network.uow(), network.as_peer, [network.patient.id]
    )
    assert [m.id for m in seen] == [measure.id]


async def test_program_metrics_suppress_small_cells(network: Network) -> None:
    await referral_in_progress(network)
    now = datetime.now(UTC)
    result = await metrics.program_metrics(
        network.uow(),
        network.as_clinic,
        network.program.id,
        now - timedelta(days=1),
        now + timedelta(days=1),
    )
    assert result.counts["referrals_received"] is None, "1 referral is below the threshold"
    assert result.counts["sessions_held"] == 0
    with pytest.raises(NotFound):
        await metrics.program_metrics(
            network.uow(), network.as_clinic, network.patient.id, now - timedelta(days=1), now
        )


async def test_care_records_citing_a_referral_not_of_this_participant_are_refused_by_name(
    network: Network,
) -> None:
    await referral_in_progress(network)
    unknown = uuid.uuid4()
    start = datetime.now(UTC) - timedelta(hours=1)
    session = await sessions.record_session(
        network.uow(),
        network.as_peer,
        sessions.RecordSession(
            program_id=network.program.id,
            format=SessionFormat.ONE_ON_ONE,
            delivery_mode=DeliveryMode.PHONE,
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
        ),
    )
    with pytest.raises(Invalid) as measure_refused:
        await outcomes.record_outcome_measure(
            network.uow(),
            network.as_peer,
            outcomes.RecordOutcomeMeasure(
                patient_id=network.patient.id,
                instrument=Instrument.GAD7,
                item_answers=(0, 1, 0, 1, 0, 1, 0),
                referral_id=unknown,
            ),
        )
    with pytest.raises(Invalid) as attendance_refused:
        await sessions.record_attendance(
            network.uow(),
            network.as_peer,
            sessions.RecordAttendance(
                session_id=session.id,
                patient_id=network.patient.id,
                status=AttendanceStatus.ATTENDED,
                referral_id=unknown,
            ),
        )
    for refused in (measure_refused.value, attendance_refused.value):
        assert [detail.field for detail in refused.details] == ["referralId"]
