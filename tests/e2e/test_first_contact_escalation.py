"""Urgent referrals: first-contact targets per priority, `ReferralOverdue` at the target and
again at twice it (to both organizations, once, whoever runs the schedule), found by
`referrals(filter: {overdue: true})` and `Task?overdue=true`. Timers live in the database: the
clock is moved by moving their due times, never by sleeping."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from fhir_support import Fhir, entries
from graphql_support import GraphQL, error_codes
from network import Network

from api.app import create_app
from api.db.uow import PostgresUnitOfWork
from api.domain.referrals import Priority, Transition
from api.services import referrals, timeliness
from api.settings import Settings

TARGETS = """
mutation Set($targets: [FirstContactTargetInput!]!) {
  setFirstContactTargets(targets: $targets) { priority minutes workingDays }
}"""
OVERDUE = """
query Overdue($overdue: Boolean) {
  referrals(filter: {overdue: $overdue}) { nodes { id } }
}"""


async def _refer(network: Network, priority: Priority = Priority.STAT) -> UUID:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
            priority=priority,
        ),
    )
    return view.referral.id


async def _timer(pool: asyncpg.Pool, referral_id: UUID) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow(
        "SELECT t.due_at - r.created_at AS target, t.escalate_at - r.created_at AS twice, "
        "t.level, t.next_at FROM referral_timers t JOIN referrals r ON r.id = t.referral_id "
        "WHERE t.referral_id = $1",
        referral_id,
    )
    return row


async def _overdue_events(pool: asyncpg.Pool, referral_id: UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT organization_ids, payload FROM outbox WHERE aggregate_id = $1 "
        "AND event_type = 'ReferralOverdue' ORDER BY id",
        referral_id,
    )
    return [{"to": set(r["organization_ids"]), **r["payload"]} for r in rows]


async def _age(pool: asyncpg.Pool, referral_id: UUID, by: timedelta) -> None:
    """Move the referral's timer as if `by` had passed."""
    await pool.execute(
        "UPDATE referral_timers SET due_at = due_at - $2::interval, "
        "escalate_at = escalate_at - $2::interval, "
        "next_at = next_at - $2::interval WHERE referral_id = $1",
        referral_id,
        by,
    )


async def test_a_stat_referral_escalates_at_one_hour_then_at_two_to_both_organizations_once(
    pool: asyncpg.Pool, network: Network
) -> None:
    referral_id = await _refer(network)
    timer = await _timer(pool, referral_id)
    assert (timer["target"], timer["twice"], timer["level"]) == (
        timedelta(hours=1),
        timedelta(hours=2),
        0,
    )
    uow = PostgresUnitOfWork(pool)

    await _age(pool, referral_id, timedelta(minutes=59))
    before_target = await timeliness.escalate_due(uow)
    await _age(pool, referral_id, timedelta(minutes=2))
    at_target = await timeliness.escalate_due(uow)
    again = await timeliness.escalate_due(uow)
    await _age(pool, referral_id, timedelta(hours=1))
    at_twice = await timeliness.escalate_due(uow)
    after_last = await timeliness.escalate_due(uow)

    assert (before_target, at_target, again, at_twice, after_last) == (0, 1, 0, 1, 0)
    events = await _overdue_events(pool, referral_id)
    assert [(e["level"], e["status"], e["priority"]) for e in events] == [
        (1, "requested", "stat"),
        (2, "requested", "stat"),
    ]
    assert all(e["to"] == {network.clinic.id, network.peer.id} for e in events)


async def test_an_accepted_referral_never_escalates(pool: asyncpg.Pool, network: Network) -> None:
    referral_id = await _refer(network)
    await referrals.transition_referral(
        network.uow(), network.as_peer, referral_id, Transition.ACCEPT
    )
    await _age(pool, referral_id, timedelta(hours=3))

    assert await timeliness.escalate_due(PostgresUnitOfWork(pool)) == 0
    assert await _overdue_events(pool, referral_id) == []
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM referral_timers WHERE referral_id = $1", referral_id
        )
        == 0
    )


async def test_schedules_running_at_once_raise_each_escalation_once(
    pool: asyncpg.Pool, network: Network
) -> None:
    ids = [await _refer(network) for _ in range(12)]
    for referral_id in ids:
        await _age(pool, referral_id, timedelta(minutes=61))

    raised = await asyncio.gather(
        *(timeliness.escalate_due(PostgresUnitOfWork(pool)) for _ in range(4))
    )

    assert sum(raised) == 12
    for referral_id in ids:
        assert [e["level"] for e in await _overdue_events(pool, referral_id)] == [1]


async def test_the_performers_own_targets_time_its_new_referrals_and_bad_ones_are_refused(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    peer = await GraphQL.as_organization(client, pool, network.peer)
    answer = await peer.data(
        TARGETS,
        targets=[
            {"priority": "STAT", "minutes": 15},
            {"priority": "ROUTINE", "workingDays": 5},
        ],
    )
    refused = await peer.run(
        TARGETS, targets=[{"priority": "ASAP", "minutes": 5, "workingDays": 1}]
    )
    read_only = await GraphQL.as_organization(
        client, pool, network.peer, "system/Organization.rs system/ServiceRequest.rs"
    )
    forbidden = await read_only.run(TARGETS, targets=[{"priority": "STAT", "minutes": 5}])
    stat = await _timer(pool, await _refer(network, Priority.STAT))
    urgent = await _timer(pool, await _refer(network, Priority.URGENT))

    assert {
        (t["priority"], t["minutes"], t["workingDays"]) for t in answer["setFirstContactTargets"]
    } == {
        ("STAT", 15, None),
        ("ASAP", 240, None),
        ("URGENT", 1440, None),
        ("ROUTINE", None, 5),
    }
    assert error_codes(refused) == [("setFirstContactTargets", "INVALID_INPUT")]
    assert "targets[0]" in refused["errors"][0]["message"]
    assert error_codes(forbidden) == [("setFirstContactTargets", "FORBIDDEN")]
    assert stat["target"] == timedelta(minutes=15)
    assert urgent["target"] == timedelta(hours=24)


async def test_overdue_referrals_are_found_by_graphql_and_fhir_and_declared_in_metadata(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    late = await _refer(network)
    on_time = await _refer(network)
    await _age(pool, late, timedelta(minutes=61))
    clinic = await GraphQL.as_organization(client, pool, network.clinic)
    fhir = await Fhir.as_organization(client, pool, network.peer)

    overdue = await clinic.data(OVERDUE, overdue=True)
    not_overdue = await clinic.data(OVERDUE, overdue=False)
    tasks = await fhir.ok("GET", "Task?overdue=true")
    bad = await fhir.get("Task?overdue=maybe")
    metadata = await fhir.ok("GET", "metadata")

    assert [n["id"] for n in overdue["referrals"]["nodes"]] == [str(late)]
    assert str(on_time) in {n["id"] for n in not_overdue["referrals"]["nodes"]}
    assert str(late) not in {n["id"] for n in not_overdue["referrals"]["nodes"]}
    assert [t["focus"]["reference"] for t in entries(tasks, "match")] == [f"ServiceRequest/{late}"]
    assert bad.status_code == 400
    (task,) = [r for r in metadata["rest"][0]["resource"] if r["type"] == "Task"]
    (parameter,) = [p for p in task["searchParam"] if p["name"] == "overdue"]
    assert parameter["definition"].endswith("/SearchParameter/Task-overdue")


async def test_an_escalation_that_fell_due_while_nothing_ran_is_raised_after_a_start(
    pool: asyncpg.Pool, network: Network, settings: Settings, tmp_path: Path
) -> None:
    referral_id = await _refer(network)
    await _age(pool, referral_id, timedelta(minutes=90))  # due while no process ran
    fresh = create_app(settings.model_copy(update={"events_schedule_interval_s": 0.2}))
    async with LifespanManager(fresh):
        for _ in range(250):
            if await _overdue_events(pool, referral_id):
                break
            await asyncio.sleep(0.02)

    assert [e["level"] for e in await _overdue_events(pool, referral_id)] == [1]
    assert (await _timer(pool, referral_id))["next_at"] > datetime.now().astimezone()
