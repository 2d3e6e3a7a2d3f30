"""A peer supporter signed in to the console is party only to the referrals assigned to them."""

from __future__ import annotations

from dataclasses import replace

import pytest
from network import Network

from api.domain.errors import DomainError, Forbidden, NotFound
from api.domain.referrals import Transition
from api.services import referrals, supporters
from api.services.filters import ReferralBox, ReferralFilter
from api.services.pagination import PageRequest


async def _accepted(network: Network) -> referrals.ReferralView:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
        ),
    )
    return await referrals.transition_referral(
        network.uow(), network.as_peer, view.referral.id, Transition.ACCEPT
    )


async def test_a_supporter_sees_and_moves_only_the_referrals_assigned_to_them(
    network: Network,
) -> None:
    mine = await _accepted(network)
    theirs = await _accepted(network)
    await referrals.assign_supporter(
        network.uow(), network.as_peer, mine.referral.id, network.supporter.id
    )
    other = await supporters.upsert_supporter(
        network.uow(),
        network.as_peer,
        supporters.UpsertPeerSupporter(
            display_name="Robin Other",
            max_caseload=5,
            certifications=network.supporter.certifications,
        ),
    )
    await referrals.assign_supporter(network.uow(), network.as_peer, theirs.referral.id, other.id)
    as_supporter = replace(network.as_peer, caseload_of=network.supporter.id)

    page = await referrals.list_referrals(
        network.uow(), as_supporter, ReferralFilter(box=ReferralBox.INBOX), PageRequest()
    )
    assert [v.referral.id for v in page.items] == [mine.referral.id]
    asked_for_other = await referrals.list_referrals(
        network.uow(),
        as_supporter,
        ReferralFilter(assigned_supporter_id=other.id),
        PageRequest(),
    )
    assert asked_for_other.items == ()

    (result,) = await referrals.get_referrals(network.uow(), as_supporter, [theirs.referral.id])
    assert isinstance(result, DomainError)
    with pytest.raises((Forbidden, NotFound)):
        await referrals.transition_referral(
            network.uow(), as_supporter, theirs.referral.id, Transition.START
        )
    moved = await referrals.transition_referral(
        network.uow(), as_supporter, mine.referral.id, Transition.START
    )
    assert moved.referral.status.value == "in-progress"
