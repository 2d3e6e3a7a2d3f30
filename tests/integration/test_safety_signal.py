"""Safety signal: a PHQ-9 with a positive item 9 raises `SafetySignalRaised` on the referral to
both organizations (the referring clinic too), saying only "a safety signal on referral X";
the clinic reads the measure only under a consent that shares outcomes. Warm handoff: one
call makes the `stat` peer → clinic referral, linked, announced at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from graphql_support import GraphQL, error_codes
from network import Network, consent_to

from api.domain.consents import DataClass
from api.domain.outcomes import Instrument
from api.domain.referrals import Transition
from api.services import outcomes, referrals

POSITIVE_ITEM_9 = (2, 2, 1, 1, 0, 1, 1, 0, 1)
HANDOFF = """
mutation Handoff($input: WarmHandoffInput!) {
  warmHandoff(input: $input) {
    id direction priority status requester { id } performer { id } escalatedFrom { id }
  }
}"""


async def _working(network: Network) -> UUID:
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
        await referrals.transition_referral(network.uow(), network.as_peer, view.referral.id, move)
    return view.referral.id


async def _record(network: Network, answers: tuple[int, ...], referral_id: UUID | None) -> UUID:
    measure = await outcomes.record_outcome_measure(
        network.uow(),
        network.as_peer,
        outcomes.RecordOutcomeMeasure(
            patient_id=network.patient.id,
            instrument=Instrument.PHQ9,
            item_answers=answers,
            referral_id=referral_id,
        ),
    )
    return measure.id


async def _events(pool: asyncpg.Pool, event_type: str, since: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT aggregate_type, aggregate_id, organization_ids, payload FROM outbox "
        "WHERE event_type = $1 AND id > $2 ORDER BY id",
        event_type,
        since,
    )
    return [
        {
            "on": (r["aggregate_type"], r["aggregate_id"]),
            "to": set(r["organization_ids"]),
            "says": dict(r["payload"]),
        }
        for r in rows
    ]


async def _last_outbox_id(pool: asyncpg.Pool) -> int:
    last: int = await pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
    return last


async def test_a_positive_item_9_reaches_the_referring_clinic_as_a_bare_signal_on_the_referral(
    pool: asyncpg.Pool, network: Network
) -> None:
    referral_id = await _working(network)
    since = await _last_outbox_id(pool)

    measure_id = await _record(network, POSITIVE_ITEM_9, referral_id)
    await _record(network, (3, 3, 3, 3, 3, 3, 3, 3, 0), referral_id)  # item 9 zero: no signal

    (signal,) = await _events(pool, "SafetySignalRaised", since)
    assert signal["on"] == ("Referral", referral_id)
    assert signal["to"] == {network.clinic.id, network.peer.id}
    # Ids, status and codes of the referral only: no instrument, answers or score.
    assert set(signal["says"]) == {"status", "version", "priority", "direction"}
    assert str(measure_id) not in str(signal)
    # The clinic reads the measure only once the patient shares outcomes with it.
    (before,) = await outcomes.outcomes_for_patients(
        network.uow(), network.as_clinic, [network.patient.id]
    )
    await consent_to(network, network.patient.id, network.clinic, DataClass.OUTCOMES)
    (after,) = await outcomes.outcomes_for_patients(
        network.uow(), network.as_clinic, [network.patient.id]
    )
    assert before == []
    assert measure_id in {m.id for m in after}


async def test_a_signal_recorded_without_a_referral_goes_to_the_open_referral_being_worked(
    pool: asyncpg.Pool, network: Network
) -> None:
    referral_id = await _working(network)
    since = await _last_outbox_id(pool)

    await _record(network, POSITIVE_ITEM_9, None)

    (signal,) = await _events(pool, "SafetySignalRaised", since)
    assert signal["on"] == ("Referral", referral_id)
    assert signal["to"] == {network.clinic.id, network.peer.id}


async def test_a_signal_with_no_open_referral_stays_with_the_recorder(
    pool: asyncpg.Pool, network: Network
) -> None:
    referral_id = await _working(network)
    await referrals.transition_referral(
        network.uow(), network.as_peer, referral_id, Transition.COMPLETE
    )
    since = await _last_outbox_id(pool)

    measure_id = await _record(network, POSITIVE_ITEM_9, None)

    (signal,) = await _events(pool, "SafetySignalRaised", since)
    assert signal == {"on": ("OutcomeMeasure", measure_id), "to": {network.peer.id}, "says": {}}


async def test_a_warm_handoff_is_one_call_making_a_linked_stat_referral_announced_at_once(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    referral_id = await _working(network)
    peer = await GraphQL.as_organization(client, pool, network.peer)
    handoff = {"referralId": str(referral_id), "clinicOrganizationId": str(network.clinic.id)}
    without_consent = await peer.run(HANDOFF, input=handoff)
    await consent_to(network, network.patient.id, network.clinic)
    since = await _last_outbox_id(pool)

    made = (await peer.data(HANDOFF, input={**handoff, "reasonText": "item 9 positive"}))[
        "warmHandoff"
    ]

    assert error_codes(without_consent) == [("warmHandoff", "CONSENT_REQUIRED")]
    assert (made["direction"], made["priority"], made["status"]) == (
        "PEER_TO_CLINIC",
        "STAT",
        "REQUESTED",
    )
    assert made["requester"] == {"id": str(network.peer.id)}
    assert made["performer"] == {"id": str(network.clinic.id)}
    assert made["escalatedFrom"] == {"id": str(referral_id)}
    announced = [
        (name, event["on"][1], event["to"])
        for name in ("ReferralCreated", "ReferralEscalated")
        for event in await _events(pool, name, since)
    ]
    both = {network.peer.id, network.clinic.id}
    assert announced == [
        ("ReferralCreated", UUID(made["id"]), both),
        ("ReferralEscalated", UUID(made["id"]), both),
    ]
    target = await pool.fetchval(
        "SELECT t.due_at - r.created_at FROM referral_timers t JOIN referrals r "
        "ON r.id = t.referral_id WHERE r.id = $1",
        UUID(made["id"]),
    )
    assert target == timedelta(hours=1)
