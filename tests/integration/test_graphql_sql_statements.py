"""Performance by construction: the SQL a request runs does not grow with the page size,
because every relation batches through a DataLoader (one service call per relation per tick)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
from graphql_support import GraphQL
from network import Network, certification, consent_to, register_patient
from starlette.applications import Starlette

from api.domain.consents import DataClass
from api.domain.referrals import Transition
from api.services import referrals, supporters

INBOX = """
query Inbox($first: Int!) {
  referrals(first: $first, filter: {box: INBOX}) {
    edges { node {
      id status priority
      patient { givenName familyName }
      program { name }
      assignedSupporter { displayName certifications { validToday } }
      history { fromStatus toStatus at actor { clientId } }
    } }
  }
}"""


class _StatementCountingPool:
    """Stands in for the app's pool: every connection it hands out logs its statements here."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    def _log(self, record: Any) -> None:
        self.statements.append(record.query)

    async def acquire(self) -> asyncpg.Connection:
        connection = await self._pool.acquire()
        connection.add_query_logger(self._log)
        return connection

    async def release(self, connection: asyncpg.Connection) -> None:
        connection.remove_query_logger(self._log)
        await self._pool.release(connection)


@contextmanager
def _counting(app: Starlette) -> Iterator[_StatementCountingPool]:
    real = app.state.pool
    counting = _StatementCountingPool(real)
    app.state.pool = counting
    try:
        yield counting
    finally:
        app.state.pool = real


async def _fill_inbox(network: Network, count: int) -> None:
    """`count` referrals to the peer organization across ten patients, accepted and assigned."""
    busy = await supporters.upsert_supporter(
        network.uow(),
        network.as_peer,
        supporters.UpsertPeerSupporter(
            display_name="Jo Busy",
            max_caseload=500,
            certifications=(certification(date.today() + timedelta(days=90)),),
        ),
    )
    people = [network.patient.id]
    for _ in range(9):
        patient = await register_patient(network)
        await consent_to(
            network, patient.id, network.peer, DataClass.DEMOGRAPHICS, DataClass.REFERRAL
        )
        people.append(patient.id)
    for index in range(count):
        view = await referrals.create_referral(
            network.uow(),
            network.as_clinic,
            referrals.CreateReferral(
                patient_id=people[index % len(people)],
                performer_organization_id=network.peer.id,
                program_id=network.program.id,
                reason_text="peer support",
            ),
        )
        await referrals.transition_referral(
            network.uow(), network.as_peer, view.referral.id, Transition.ACCEPT
        )
        await referrals.assign_supporter(network.uow(), network.as_peer, view.referral.id, busy.id)


async def test_the_inbox_runs_the_same_statements_for_5_and_100_referrals(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _fill_inbox(network, 100)
    peer = await GraphQL.as_organization(client, pool, network.peer)
    await peer.data(INBOX, first=1)  # warm the parser/validation caches and the token cache

    with _counting(app) as five:
        small = await peer.data(INBOX, first=5)
    with _counting(app) as hundred:
        large = await peer.data(INBOX, first=100)

    assert len(small["referrals"]["edges"]) == 5
    assert len(large["referrals"]["edges"]) == 100
    assert {e["node"]["patient"]["familyName"] for e in large["referrals"]["edges"]} >= {
        "Testperson",
        "Sampleton",
    }
    assert all(len(e["node"]["history"]) == 2 for e in large["referrals"]["edges"])
    assert len(hundred.statements) == len(five.statements), (five.statements, hundred.statements)
    # One search, then one batch per relation (patients, programs, supporters, histories), each
    # in its own short transaction with its consent decision and audit insert.
    assert len(five.statements) <= 30


async def test_fragments_prefetch_alike_and_a_skipped_patient_is_neither_read_nor_audited(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _fill_inbox(network, 3)
    peer = await GraphQL.as_organization(client, pool, network.peer)
    by_fragment = """query { referrals { ...Page } } fragment Page on ReferralConnection {
        edges { node { ... on Referral { patient { givenName } } } } }"""
    skipped = """query($with: Boolean!) { referrals { edges { node {
        id patient @include(if: $with) { givenName } } } } }"""

    async def patient_reads() -> int:
        async with pool.acquire() as connection:
            return int(
                await connection.fetchval(
                    "SELECT count(*) FROM audit_events WHERE operation = 'readPatient'"
                )
            )

    with _counting(app) as fragment_run:
        data = await peer.data(by_fragment)
    before = await patient_reads()
    with _counting(app) as skipped_run:
        await peer.data(skipped, **{"with": False})

    assert [e["node"]["patient"]["givenName"] for e in data["referrals"]["edges"]]
    assert await patient_reads() == before
    assert not any("FROM patients" in statement for statement in skipped_run.statements)
    assert sum("FROM patients" in statement for statement in fragment_run.statements) == 1
