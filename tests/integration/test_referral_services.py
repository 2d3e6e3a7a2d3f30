"""Referral use cases on real PostgreSQL: consent, state machine, versions, tenancy, no partial
writes, audit and outbox in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from network import Network, consent_to, principal_for, register_patient

from api.domain.consents import DataClass
from api.domain.errors import (
    Conflict,
    ConsentRequired,
    ConsentRevoked,
    Forbidden,
    Invalid,
    InvalidTransition,
    NotFound,
    SupporterUnavailable,
    VersionConflict,
)
from api.domain.referrals import Coding, Priority, ReferralStatus, Transition
from api.services import consents, referrals
from api.services.filters import ReferralBox, ReferralFilter
from api.services.pagination import PageRequest

REFERRAL_REASON = Coding("http://snomed.info/sct", "461481000124109", "Referral to peer support")


def create_command(network: Network, **changes: object) -> referrals.CreateReferral:
    fields: dict[str, object] = {
        "patient_id": network.patient.id,
        "performer_organization_id": network.peer.id,
        "program_id": network.program.id,
        "priority": Priority.URGENT,
        "reason_codes": (REFERRAL_REASON,),
        "reason_text": "low mood since job loss",
    }
    fields.update(changes)
    return referrals.CreateReferral(**fields)  # type: ignore[arg-type]


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM referrals) AS referrals, "
            "(SELECT count(*) FROM referral_transitions) AS transitions, "
            "(SELECT count(*) FROM outbox) AS outbox, "
            "(SELECT count(*) FROM audit_events WHERE outcome = 'success') AS audit_success, "
            "(SELECT count(*) FROM audit_events WHERE outcome = 'denied') AS audit_denied"
        )
    return dict(row)


async def create(network: Network, **changes: object) -> referrals.ReferralView:
    return await referrals.create_referral(
        network.uow(), network.as_clinic, create_command(network, **changes)
    )


async def test_a_consented_referral_is_created_with_history_audit_and_outbox(
    network: Network,
) -> None:
    before = await counts(network.pool)
    view = await create(network)
    referral = view.referral
    assert referral.status is ReferralStatus.REQUESTED and referral.version == 1
    assert referral.consent_id == network.consent.id
    after = await counts(network.pool)
    assert after["referrals"] - before["referrals"] == 1
    assert after["transitions"] - before["transitions"] == 1
    assert after["outbox"] - before["outbox"] == 1
    assert after["audit_success"] - before["audit_success"] == 1
    async with network.pool.acquire() as conn:
        payload = await conn.fetchval(
            "SELECT payload FROM outbox WHERE aggregate_id = $1", referral.id
        )
    assert payload == {
        "status": "requested",
        "version": 1,
        "priority": "urgent",
        "direction": "clinic_to_peer",
    }, "outbox events carry no PHI"


async def test_a_referral_without_a_covering_consent_is_refused_and_writes_nothing(
    network: Network,
) -> None:
    before = await counts(network.pool)
    with pytest.raises(ConsentRequired) as raised:
        await referrals.create_referral(
            network.uow(),
            network.as_clinic,
            create_command(network, performer_organization_id=network.stranger.id, program_id=None),
        )
    assert raised.value.code == "CONSENT_REQUIRED"
    after = await counts(network.pool)
    assert {k: after[k] - before[k] for k in after} == {
        "referrals": 0,
        "transitions": 0,
        "outbox": 0,
        "audit_success": 0,
        "audit_denied": 1,
    }, "only the denial is recorded"


async def test_a_consent_missing_the_substance_use_class_refuses_a_part2_referral(
    network: Network,
) -> None:
    with pytest.raises(ConsentRequired, match="substance_use"):
        await create(
            network,
            shared_data_classes=frozenset(
                {DataClass.DEMOGRAPHICS, DataClass.REFERRAL, DataClass.SUBSTANCE_USE}
            ),
        )


async def test_a_revoked_consent_refuses_new_referrals_as_revoked(network: Network) -> None:
    await consents.revoke_consent(
        network.uow(), network.as_clinic, network.consent.id, reason="patient request"
    )
    with pytest.raises(ConsentRevoked):
        await create(network)


async def test_the_performer_moves_the_referral_and_history_records_who_when_why(
    network: Network,
) -> None:
    referral = (await create(network)).referral
    accepted = await referrals.transition_referral(
        network.uow(), network.as_peer, referral.id, Transition.ACCEPT, expected_version=1
    )
    started = await referrals.transition_referral(
        network.uow(), network.as_peer, referral.id, Transition.START, expected_version=2
    )
    held = await referrals.transition_referral(
        network.uow(),
        network.as_peer,
        referral.id,
        Transition.HOLD,
        reason="travelling",
        expected_version=3,
    )
    assert [v.referral.status for v in (accepted, started, held)] == [
        ReferralStatus.ACCEPTED,
        ReferralStatus.IN_PROGRESS,
        ReferralStatus.ON_HOLD,
    ]
    (history,) = await referrals.referral_histories(network.uow(), network.as_clinic, [referral.id])
    assert isinstance(history, list)
    assert [(c.from_status, c.to_status, c.reason, c.actor.organization_id) for c in history] == [
        (None, ReferralStatus.REQUESTED, None, network.clinic.id),
        (ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED, None, network.peer.id),
        (ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS, None, network.peer.id),
        (ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD, "travelling", network.peer.id),
    ]


async def test_a_transition_not_allowed_for_the_role_is_refused_without_writes(
    network: Network,
) -> None:
    referral = (await create(network)).referral
    before = await counts(network.pool)
    with pytest.raises(InvalidTransition, match="requester cannot accept"):
        await referrals.transition_referral(
            network.uow(), network.as_clinic, referral.id, Transition.ACCEPT
        )
    with pytest.raises(InvalidTransition):
        await referrals.transition_referral(
            network.uow(), network.as_peer, referral.id, Transition.COMPLETE
        )
    with pytest.raises(Invalid):
        await referrals.transition_referral(
            network.uow(), network.as_peer, referral.id, Transition.REJECT, reason=" "
        )
    after = await counts(network.pool)
    assert after["referrals"] == before["referrals"]
    assert after["transitions"] == before["transitions"]
    assert after["outbox"] == before["outbox"]


async def test_a_stale_version_is_a_conflict(network: Network) -> None:
    referral = (await create(network)).referral
    await referrals.transition_referral(
        network.uow(), network.as_peer, referral.id, Transition.ACCEPT, expected_version=1
    )
    with pytest.raises(VersionConflict) as raised:
        await referrals.transition_referral(
            network.uow(), network.as_peer, referral.id, Transition.START, expected_version=1
        )
    assert raised.value.code == "CONFLICT"
    current = await referrals.get_referral(network.uow(), network.as_peer, referral.id)
    assert current.referral.status is ReferralStatus.ACCEPTED and current.referral.version == 2


async def test_an_organization_that_is_not_party_cannot_read_or_move_the_referral(
    network: Network,
) -> None:
    referral = (await create(network)).referral
    # The stranger has no relationship with the patient: the referral does not exist for it.
    with pytest.raises(NotFound) as read:
        await referrals.get_referral(network.uow(), network.as_stranger, referral.id)
    with pytest.raises(NotFound) as moved:
        await referrals.transition_referral(
            network.uow(), network.as_stranger, referral.id, Transition.ACCEPT
        )
    assert str(read.value) == str(moved.value) == f"Referral {referral.id} not found"
    page = await referrals.list_referrals(
        network.uow(), network.as_stranger, ReferralFilter(), PageRequest()
    )
    assert page.items == ()
    async with network.pool.acquire() as conn:
        denials = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE outcome = 'denied' AND organization_id = $1",
            network.stranger.id,
        )
    assert denials == 2


async def test_a_token_without_the_scope_is_forbidden_with_the_scope_it_needs(
    network: Network,
) -> None:
    read_only = principal_for(network.clinic, "system/ServiceRequest.rs")
    with pytest.raises(Forbidden) as raised:
        await referrals.create_referral(network.uow(), read_only, create_command(network))
    assert raised.value.needed_scope == "user/ServiceRequest.c"


async def test_assignment_needs_a_valid_certification_and_free_caseload(network: Network) -> None:
    refs = []
    for _ in range(3):
        referral = (await create(network)).referral
        await referrals.transition_referral(
            network.uow(), network.as_peer, referral.id, Transition.ACCEPT
        )
        refs.append(referral)
    with pytest.raises(SupporterUnavailable, match="certification"):
        await referrals.assign_supporter(
            network.uow(), network.as_peer, refs[0].id, network.expired_supporter.id
        )
    for referral in refs[:2]:
        assigned = await referrals.assign_supporter(
            network.uow(), network.as_peer, referral.id, network.supporter.id
        )
        assert assigned.referral.assigned_supporter_id == network.supporter.id
    with pytest.raises(SupporterUnavailable, match=r"caseload is full \(2/2\)"):
        await referrals.assign_supporter(
            network.uow(), network.as_peer, refs[2].id, network.supporter.id
        )
    # Completing one frees a place.
    await referrals.transition_referral(
        network.uow(), network.as_peer, refs[0].id, Transition.START
    )
    await referrals.transition_referral(
        network.uow(), network.as_peer, refs[0].id, Transition.COMPLETE
    )
    await referrals.assign_supporter(
        network.uow(), network.as_peer, refs[2].id, network.supporter.id
    )


async def test_the_requester_cannot_assign_a_supporter(network: Network) -> None:
    referral = (await create(network)).referral
    with pytest.raises(Forbidden):
        await referrals.assign_supporter(
            network.uow(), network.as_clinic, referral.id, network.supporter.id
        )


async def test_revoking_consent_redacts_the_performers_view_on_the_next_read(
    network: Network,
) -> None:
    referral = (await create(network)).referral
    seen = await referrals.get_referral(network.uow(), network.as_peer, referral.id)
    assert seen.withheld is None and seen.referral.reason_text == "low mood since job loss"
    await consents.revoke_consent(network.uow(), network.as_clinic, network.consent.id)
    stub = await referrals.get_referral(network.uow(), network.as_peer, referral.id)
    assert isinstance(stub.withheld, ConsentRevoked)
    assert stub.referral.reason_text is None and stub.referral.reason_codes == ()
    assert stub.referral.status is ReferralStatus.REQUESTED, "the stub keeps the workflow"
    requester = await referrals.get_referral(network.uow(), network.as_clinic, referral.id)
    assert requester.withheld is None and requester.referral.reason_text is not None


async def test_idempotency_key_replays_and_refuses_a_different_request(network: Network) -> None:
    first = await referrals.create_referral(
        network.uow(), network.as_clinic, create_command(network), idempotency_key="k-1"
    )
    again = await referrals.create_referral(
        network.uow(), network.as_clinic, create_command(network), idempotency_key="k-1"
    )
    assert again.referral.id == first.referral.id
    with pytest.raises(Conflict, match="idempotency key"):
        await referrals.create_referral(
            network.uow(),
            network.as_clinic,
            create_command(network, reason_text="something else"),
            idempotency_key="k-1",
        )
    assert (await counts(network.pool))["referrals"] == 1


async def test_escalation_goes_peer_to_clinic_with_consent_and_links_the_original(
    network: Network,
) -> None:
    original = (await create(network)).referral
    await referrals.transition_referral(
        network.uow(), network.as_peer, original.id, Transition.ACCEPT
    )
    command = referrals.EscalateReferral(
        referral_id=original.id,
        clinic_organization_id=network.clinic.id,
        priority=Priority.STAT,
        reason_text="safety concern",
    )
    with pytest.raises(ConsentRequired):
        await referrals.escalate_referral(network.uow(), network.as_peer, command)
    await consent_to(network, network.patient.id, network.clinic)
    escalation = (
        await referrals.escalate_referral(network.uow(), network.as_peer, command)
    ).referral
    assert escalation.direction.value == "peer_to_clinic"
    assert escalation.escalated_from_id == original.id
    assert escalation.requester_organization_id == network.peer.id
    inbox = await referrals.list_referrals(
        network.uow(), network.as_clinic, ReferralFilter(box=ReferralBox.INBOX), PageRequest()
    )
    assert [v.referral.id for v in inbox.items] == [escalation.id]


async def test_keyset_pagination_walks_every_referral_once_newest_first(network: Network) -> None:
    patient = await register_patient(network)
    await consent_to(network, patient.id, network.peer)
    created = [(await create(network, patient_id=patient.id)).referral.id for _ in range(7)]
    seen, cursor = [], None
    while True:
        page = await referrals.list_referrals(
            network.uow(),
            network.as_peer,
            ReferralFilter(patient_id=patient.id),
            PageRequest.of(3, cursor),
        )
        seen += [v.referral.id for v in page.items]
        if not page.has_next_page:
            break
        cursor = page.end_cursor
    assert seen == list(reversed(created))


async def test_updated_since_filters_like_fhir_last_updated_gt(network: Network) -> None:
    old = (await create(network)).referral
    mark = datetime.now(UTC)
    new = (await create(network)).referral
    page = await referrals.list_referrals(
        network.uow(), network.as_peer, ReferralFilter(updated_since=mark), PageRequest()
    )
    assert [v.referral.id for v in page.items] == [new.id]
    page = await referrals.list_referrals(
        network.uow(),
        network.as_peer,
        ReferralFilter(
            updated_since=mark - timedelta(hours=1), statuses=frozenset({ReferralStatus.REQUESTED})
        ),
        PageRequest(),
    )
    assert {v.referral.id for v in page.items} == {old.id, new.id}
