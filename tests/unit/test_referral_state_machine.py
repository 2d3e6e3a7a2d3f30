"""Every (state, transition, role) pair of the referral Task state machine, allowed or refused."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

import pytest

from api.domain.consents import DataClass
from api.domain.errors import Forbidden, Invalid, InvalidTransition, VersionConflict
from api.domain.outcomes import Instrument, OutcomeMeasure
from api.domain.referrals import (
    BUSINESS_STATUS,
    EVENT_OF_TRANSITION,
    Actor,
    Direction,
    Priority,
    Referral,
    ReferralStatus,
    Role,
    Transition,
    allowed_transitions,
    apply_transition,
)

S = ReferralStatus
T = Transition
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ACTOR = Actor(uuid.uuid4(), "client-1", "client-1")

# The state machine of docs/design.md, written out independently of the implementation's table.
EXPECTED = {
    (S.REQUESTED, T.ACCEPT, Role.PERFORMER): S.ACCEPTED,
    (S.REQUESTED, T.REJECT, Role.PERFORMER): S.REJECTED,
    (S.ACCEPTED, T.START, Role.PERFORMER): S.IN_PROGRESS,
    (S.IN_PROGRESS, T.HOLD, Role.PERFORMER): S.ON_HOLD,
    (S.ON_HOLD, T.RESUME, Role.PERFORMER): S.IN_PROGRESS,
    (S.IN_PROGRESS, T.COMPLETE, Role.PERFORMER): S.COMPLETED,
    (S.IN_PROGRESS, T.FAIL, Role.PERFORMER): S.FAILED,
    (S.REQUESTED, T.CANCEL, Role.REQUESTER): S.CANCELLED,
    (S.ACCEPTED, T.CANCEL, Role.REQUESTER): S.CANCELLED,
    (S.IN_PROGRESS, T.CANCEL, Role.REQUESTER): S.CANCELLED,
    (S.ON_HOLD, T.CANCEL, Role.REQUESTER): S.CANCELLED,
}
NEEDS_REASON = {T.REJECT, T.CANCEL, T.FAIL, T.HOLD}


def referral(status: ReferralStatus, version: int = 3) -> Referral:
    return Referral(
        id=uuid.uuid4(),
        direction=Direction.CLINIC_TO_PEER,
        requester_organization_id=uuid.uuid4(),
        performer_organization_id=uuid.uuid4(),
        program_id=None,
        patient_id=uuid.uuid4(),
        priority=Priority.ROUTINE,
        reason_codes=(),
        reason_text="needs peer support",
        shared_data_classes=frozenset({DataClass.REFERRAL}),
        consent_id=uuid.uuid4(),
        status=status,
        status_reason=None,
        assigned_supporter_id=None,
        escalated_from_id=None,
        version=version,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("status", "transition", "role"), list(itertools.product(S, T, Role)), ids=str
)
def test_each_state_transition_and_role_is_allowed_exactly_as_designed(
    status: ReferralStatus, transition: Transition, role: Role
) -> None:
    current = referral(status)
    expected = EXPECTED.get((status, transition, role))
    move = (
        apply_transition(
            current,
            transition,
            role=role,
            reason="because",
            expected_version=3,
            actor=ACTOR,
            at=NOW,
        )
        if expected
        else None
    )
    if expected is None:
        with pytest.raises(InvalidTransition):
            apply_transition(
                current,
                transition,
                role=role,
                reason="because",
                expected_version=3,
                actor=ACTOR,
                at=NOW,
            )
        return
    assert move is not None
    changed, change, event = move
    assert changed.status is expected
    assert changed.version == 4
    assert changed.status_reason == "because"
    assert (change.from_status, change.to_status, change.transition) == (
        status,
        expected,
        transition,
    )
    assert change.actor == ACTOR and change.at == NOW and change.version == 4
    # The move announces itself to both parties: the event the outbox carries.
    assert event.event_type == EVENT_OF_TRANSITION[transition]
    assert (event.aggregate_type, event.aggregate_id) == ("Referral", current.id)
    assert event.organization_ids == (
        current.requester_organization_id,
        current.performer_organization_id,
    )
    assert event.payload == {
        "status": expected.value,
        "version": 4,
        "priority": current.priority.value,
        "direction": current.direction.value,
    }


@pytest.mark.parametrize(("status", "transition", "role"), list(EXPECTED), ids=str)
def test_transitions_that_need_a_reason_refuse_a_blank_one(
    status: ReferralStatus, transition: Transition, role: Role
) -> None:
    for blank in (None, "", "   "):
        if transition in NEEDS_REASON:
            with pytest.raises(Invalid) as raised:
                apply_transition(
                    referral(status),
                    transition,
                    role=role,
                    reason=blank,
                    expected_version=None,
                    actor=ACTOR,
                    at=NOW,
                )
            assert raised.value.details[0].field == "reason"
        else:
            changed, _, _ = apply_transition(
                referral(status),
                transition,
                role=role,
                reason=blank,
                expected_version=None,
                actor=ACTOR,
                at=NOW,
            )
            assert changed.status_reason is None


def test_a_stale_version_is_a_conflict_not_an_overwrite() -> None:
    with pytest.raises(VersionConflict) as raised:
        apply_transition(
            referral(S.REQUESTED, version=5),
            T.ACCEPT,
            role=Role.PERFORMER,
            reason=None,
            expected_version=4,
            actor=ACTOR,
            at=NOW,
        )
    assert (raised.value.expected, raised.value.actual) == (4, 5)
    assert raised.value.code == "CONFLICT"


def test_an_organization_that_is_neither_party_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        apply_transition(
            referral(S.REQUESTED),
            T.ACCEPT,
            role=None,
            reason=None,
            expected_version=None,
            actor=ACTOR,
            at=NOW,
        )


def test_role_of_tells_requester_performer_and_stranger_apart() -> None:
    r = referral(S.REQUESTED)
    assert r.role_of(r.requester_organization_id) is Role.REQUESTER
    assert r.role_of(r.performer_organization_id) is Role.PERFORMER
    assert r.role_of(uuid.uuid4()) is None


def test_final_states_allow_nothing_for_anyone() -> None:
    for status in (S.REJECTED, S.COMPLETED, S.FAILED, S.CANCELLED):
        assert status.is_final
        for role in Role:
            assert allowed_transitions(status, role) == ()


def test_every_status_but_on_hold_has_a_bser_business_status() -> None:
    assert BUSINESS_STATUS[S.REQUESTED] == ("2.0", "Service Request Created")
    assert BUSINESS_STATUS[S.COMPLETED] is not None and BUSINESS_STATUS[S.COMPLETED][0] == "7.0"
    assert [s for s in S if BUSINESS_STATUS[s] is None] == [S.ON_HOLD]


def phq9(answers: tuple[int, ...]) -> OutcomeMeasure:
    return OutcomeMeasure(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), None, Instrument.PHQ9, NOW, answers, 1, NOW, NOW
    )


def test_recording_a_measure_announces_it_and_a_safety_signal_on_each_concerned_referral() -> None:
    calm = phq9((3, 3, 3, 3, 3, 3, 3, 3, 0))
    assert [e.event_type for e in calm.recorded()] == ["OutcomeMeasureRecorded"]
    signal = phq9((0, 0, 0, 0, 0, 0, 0, 0, 1))
    # Concerning no referral, the signal goes to the recorder alone, on the measure.
    alone = signal.recorded()
    assert [(e.event_type, e.aggregate_type, e.organization_ids) for e in alone] == [
        ("OutcomeMeasureRecorded", "OutcomeMeasure", (signal.organization_id,)),
        ("SafetySignalRaised", "OutcomeMeasure", (signal.organization_id,)),
    ]
    concerned = [referral(ReferralStatus.ACCEPTED), referral(ReferralStatus.IN_PROGRESS)]
    raised = signal.recorded(concerned)[1:]
    assert [(e.event_type, e.aggregate_id) for e in raised] == [
        ("SafetySignalRaised", r.id) for r in concerned
    ]
    # Both parties hear it; the event names the referral, never the instrument or answers.
    assert raised[0].organization_ids == (
        concerned[0].requester_organization_id,
        concerned[0].performer_organization_id,
    )
    assert "instrument" not in raised[0].payload


def test_reprioritizing_makes_the_next_version_and_announces_it_to_both_parties() -> None:
    current = referral(ReferralStatus.REQUESTED)
    changed, event = current.reprioritized(Priority.STAT, NOW)
    assert (changed.priority, changed.version, changed.updated_at) == (Priority.STAT, 4, NOW)
    assert changed.status is current.status
    assert (event.event_type, event.aggregate_type, event.aggregate_id) == (
        "ReferralReprioritized",
        "Referral",
        current.id,
    )
    assert event.organization_ids == (
        current.requester_organization_id,
        current.performer_organization_id,
    )
    assert event.payload == {"priority": "stat", "version": 4}
