"""Each console role holds exactly the scopes of its capabilities (the one policy table)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from api.domain.staff import StaffRole, StaffUser
from api.services.capabilities import Capability, allows
from api.services.users import principal_of


def test_a_clinic_account_reads_its_referrals_and_changes_nothing() -> None:
    clinic = principal_of(
        StaffUser(uuid4(), uuid4(), "c@b.example", StaffRole.CLINIC, None, False, datetime.now(UTC))
    )
    assert allows(clinic, Capability.READ_REFERRALS)
    for write in (
        Capability.TRANSITION_REFERRAL,
        Capability.ASSIGN_SUPPORTER,
        Capability.GRANT_CONSENT,
        Capability.RECORD_SESSIONS,
    ):
        assert not allows(clinic, write)


def test_a_supervisor_sees_supporters_and_metrics_but_no_patient_data() -> None:
    supervisor = principal_of(
        StaffUser(
            uuid4(), uuid4(), "s@b.example", StaffRole.SUPERVISOR, None, False, datetime.now(UTC)
        )
    )
    assert allows(supervisor, Capability.READ_SUPPORTERS)
    assert allows(supervisor, Capability.READ_METRICS)
    for phi in (Capability.READ_REFERRALS, Capability.READ_PATIENTS, Capability.READ_OUTCOMES):
        assert not allows(supervisor, phi)


def test_a_supporter_is_held_to_their_caseload_and_revokes_no_consent() -> None:
    supporter_id = uuid4()
    supporter = principal_of(
        StaffUser(
            uuid4(),
            uuid4(),
            "p@b.example",
            StaffRole.SUPPORTER,
            supporter_id,
            False,
            datetime.now(UTC),
        )
    )
    assert supporter.caseload_of == supporter_id
    assert supporter.subject != str(supporter_id)  # audited as the person, not the supporter
    assert allows(supporter, Capability.RECORD_OUTCOMES)
    assert not allows(supporter, Capability.REVOKE_CONSENT)
