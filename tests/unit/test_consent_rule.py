"""The consent rule: organization × data class × purpose × time; Part 2 only when named."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from api.domain.consents import (
    Consent,
    ConsentStatus,
    DataClass,
    Purpose,
    decide_disclosure,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PATIENT = uuid.uuid4()
PEER_ORG = uuid.uuid4()
OTHER_ORG = uuid.uuid4()
CLINIC = uuid.uuid4()


def consent(
    *,
    recipient: uuid.UUID = PEER_ORG,
    classes: set[DataClass] | None = None,
    purposes: set[Purpose] | None = None,
    start: datetime = NOW - timedelta(days=30),
    end: datetime | None = None,
    revoked: bool = False,
) -> Consent:
    return Consent(
        id=uuid.uuid4(),
        patient_id=PATIENT,
        recorded_by_organization_id=CLINIC,
        recipient_organization_id=recipient,
        purposes=frozenset(purposes or {Purpose.CARE_COORDINATION}),
        data_classes=frozenset(classes or {DataClass.DEMOGRAPHICS, DataClass.REFERRAL}),
        period_start=start,
        period_end=end,
        revoked=revoked,
        revoked_at=NOW - timedelta(days=1) if revoked else None,
        revocation_reason=None,
        source_reference=None,
        version=1,
        created_at=start,
        updated_at=start,
    )


def decide(
    consents: list[Consent],
    classes: set[DataClass],
    recipient: uuid.UUID = PEER_ORG,
    now: datetime = NOW,
) -> tuple[bool, bool]:
    d = decide_disclosure(
        consents,
        patient_id=PATIENT,
        recipient_organization_id=recipient,
        data_classes=classes,
        now=now,
    )
    return d.permitted, d.had_lapsed_consent


def test_an_active_consent_naming_the_recipient_for_the_classes_permits() -> None:
    c = consent()
    d = decide_disclosure(
        [c],
        patient_id=PATIENT,
        recipient_organization_id=PEER_ORG,
        data_classes={DataClass.REFERRAL},
        now=NOW,
    )
    assert d.permitted and d.consent_ids == (c.id,)


def test_a_consent_naming_another_organization_does_not_permit() -> None:
    assert decide([consent(recipient=OTHER_ORG)], {DataClass.REFERRAL}) == (False, False)


def test_a_class_the_consent_does_not_name_is_refused_with_the_missing_class() -> None:
    d = decide_disclosure(
        [consent()],
        patient_id=PATIENT,
        recipient_organization_id=PEER_ORG,
        data_classes={DataClass.REFERRAL, DataClass.OUTCOMES},
        now=NOW,
    )
    assert not d.permitted and d.reason is not None and "outcomes" in d.reason


def test_substance_use_is_covered_only_when_named_explicitly() -> None:
    broad = consent(
        classes={DataClass.DEMOGRAPHICS, DataClass.REFERRAL, DataClass.SESSIONS, DataClass.OUTCOMES}
    )
    assert decide([broad], {DataClass.SUBSTANCE_USE})[0] is False
    part2 = consent(classes={DataClass.REFERRAL, DataClass.SUBSTANCE_USE})
    assert decide([part2], {DataClass.REFERRAL, DataClass.SUBSTANCE_USE})[0] is True


def test_a_revoked_consent_no_longer_permits_and_says_it_lapsed() -> None:
    assert decide([consent(revoked=True)], {DataClass.REFERRAL}) == (False, True)


def test_an_expired_period_no_longer_permits() -> None:
    expired = consent(end=NOW - timedelta(seconds=1))
    assert expired.status_at(NOW) is ConsentStatus.EXPIRED
    assert decide([expired], {DataClass.REFERRAL}) == (False, True)


def test_a_consent_whose_period_has_not_started_does_not_permit_yet() -> None:
    future = consent(start=NOW + timedelta(days=1))
    assert decide([future], {DataClass.REFERRAL}) == (False, False)
    assert decide([future], {DataClass.REFERRAL}, now=NOW + timedelta(days=2))[0] is True


def test_purposes_must_overlap_the_sharing_purposes() -> None:
    treatment_only = consent(purposes={Purpose.TREATMENT})
    assert decide([treatment_only], {DataClass.REFERRAL})[0] is True
    d = decide_disclosure(
        [treatment_only],
        patient_id=PATIENT,
        recipient_organization_id=PEER_ORG,
        data_classes={DataClass.REFERRAL},
        purposes=frozenset({Purpose.CARE_COORDINATION}),
        now=NOW,
    )
    assert not d.permitted


def test_a_new_consent_after_a_revoked_one_permits_again() -> None:
    assert decide([consent(revoked=True), consent()], {DataClass.REFERRAL})[0] is True


def test_another_patients_consent_never_counts() -> None:
    other = consent()
    d = decide_disclosure(
        [other],
        patient_id=uuid.uuid4(),
        recipient_organization_id=PEER_ORG,
        data_classes={DataClass.REFERRAL},
        now=NOW,
    )
    assert not d.permitted


def test_revoking_makes_the_next_version_and_announces_it_to_both_organizations() -> None:
    given = consent()
    revoked, event = given.revoke("patient asked", NOW)
    assert (revoked.revoked, revoked.revoked_at, revoked.revocation_reason) == (
        True,
        NOW,
        "patient asked",
    )
    assert (revoked.version, revoked.updated_at) == (2, NOW)
    assert revoked.status_at(NOW) is ConsentStatus.REVOKED
    assert (event.event_type, event.aggregate_type, event.aggregate_id) == (
        "ConsentRevoked",
        "Consent",
        given.id,
    )
    assert event.organization_ids == (CLINIC, PEER_ORG)
    assert event.payload == {"status": "revoked", "version": 2}
