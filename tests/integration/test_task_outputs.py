"""A Task's outputs (the Procedures recorded for its referral) are listed to the two parties to
the referral, in the order they were recorded, and to nobody else."""

from __future__ import annotations

from network import Network

from api.domain.procedures import HCPCS_SYSTEM, ProcedureStatus
from api.domain.referrals import Coding, Transition
from api.services import procedures, referrals


async def test_outputs_are_listed_to_both_parties_in_recorded_order_and_to_no_stranger(
    network: Network,
) -> None:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id, performer_organization_id=network.peer.id
        ),
    )
    rid = view.referral.id
    for move in (Transition.ACCEPT, Transition.START):
        await referrals.transition_referral(network.uow(), network.as_peer, rid, move)
    recorded = [
        await procedures.record_procedure(
            network.uow(),
            network.as_peer,
            procedures.RecordProcedure(
                referral_id=rid,
                status=ProcedureStatus.IN_PROGRESS,
                codes=(Coding(HCPCS_SYSTEM, "H0038"),),
                units=units,
            ),
        )
        for units in (1, 2)
    ]
    expected = {rid: tuple(r.procedure.id for r in recorded)}
    assert await procedures.outputs_of(network.uow(), network.as_peer, [rid]) == expected
    assert await procedures.outputs_of(network.uow(), network.as_clinic, [rid]) == expected
    assert await procedures.outputs_of(network.uow(), network.as_stranger, [rid]) == {}
