"""Performance by construction: the SQL a request runs does not grow with the page size or the
number of parents, because every relation and every list under a parent batches through a
DataLoader (one service call per relation per tick)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
from graphql_support import GraphQL
from network import Network, certification, consent_to, principal_for, register_patient
from sql_statements import counting_statements
from starlette.applications import Starlette

from api.domain.consents import DataClass
from api.domain.locations import Address
from api.domain.organizations import Organization, OrganizationKind
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.domain.referrals import Transition
from api.domain.sessions import SessionFormat
from api.services import locations, organizations, programs, referrals, sessions, supporters

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


# A statement reading patients: their own read, or one joining them in (a page of referrals).
_READS_PATIENTS = re.compile(r"\b(FROM|JOIN) patients\b")


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

    with counting_statements(app) as five:
        small = await peer.data(INBOX, first=5)
    with counting_statements(app) as hundred:
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

    with counting_statements(app) as fragment_run:
        data = await peer.data(by_fragment)
    before = await patient_reads()
    with counting_statements(app) as skipped_run:
        await peer.data(skipped, **{"with": False})

    assert [e["node"]["patient"]["givenName"] for e in data["referrals"]["edges"]]
    assert await patient_reads() == before
    assert not any(_READS_PATIENTS.search(s) for s in skipped_run.statements)
    assert sum(bool(_READS_PATIENTS.search(s)) for s in fragment_run.statements) == 1


DIRECTORY = """
query Directory {
  organizations(first: 100) { nodes {
    name
    programs(first: 5) { nodes {
      name sessions(first: 3) { id startsAt } locations { name address { city } }
    } }
    supporters(first: 5) { nodes { displayName certifications { validToday } } }
  } }
}"""

PATIENT_REFERRALS = """
query PatientReferrals($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Patient {
    id
    referrals(first: 10) { nodes {
      id status patient { familyName } program { name } history { toStatus }
    } }
  } }
}"""


async def _program_with_sessions(network: Network, organization: Organization) -> PeerProgram:
    """A program meeting at one location, with a supporter and two sessions, all of
    `organization`."""
    owner = principal_for(organization)
    hall = await locations.upsert_location(
        network.uow(),
        owner,
        locations.UpsertLocation(name="Library Hall", address=Address(city="Springfield")),
    )
    program = await programs.upsert_program(
        network.uow(),
        owner,
        programs.UpsertPeerProgram(
            name="Hearing Voices Group", kind=ProgramKind.SUPPORT_GROUP, location_ids=(hall.id,)
        ),
    )
    await supporters.upsert_supporter(
        network.uow(),
        owner,
        supporters.UpsertPeerSupporter(
            display_name="Kim Facilitator",
            max_caseload=5,
            certifications=(certification(date.today() + timedelta(days=90)),),
        ),
    )
    for week in range(2):
        starts_at = datetime(2026, 3, 2, 18, tzinfo=UTC) + timedelta(weeks=week)
        await sessions.record_session(
            network.uow(),
            owner,
            sessions.RecordSession(
                program_id=program.id,
                format=SessionFormat.GROUP,
                delivery_mode=DeliveryMode.IN_PERSON,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=1),
            ),
        )
    return program


async def _add_peer_organizations(network: Network, count: int) -> None:
    for _ in range(count):
        organization = await organizations.create_organization(
            network.uow(),
            name=f"Peer Collective {secrets.token_hex(3)}",
            kind=OrganizationKind.PEER_ORGANIZATION,
        )
        await _program_with_sessions(network, organization)


async def test_the_directory_runs_the_same_statements_for_3_and_9_organizations(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _program_with_sessions(network, network.peer)
    clinic = await GraphQL.as_organization(client, pool, network.clinic)
    await clinic.data(DIRECTORY)  # warm the caches

    with counting_statements(app) as three:
        few = await clinic.data(DIRECTORY)
    await _add_peer_organizations(network, 6)
    with counting_statements(app) as nine:
        many = await clinic.data(DIRECTORY)

    assert len(few["organizations"]["nodes"]) == 3
    assert len(many["organizations"]["nodes"]) == 9
    with_programs = [o for o in many["organizations"]["nodes"] if o["programs"]["nodes"]]
    assert len(with_programs) == 7  # the network's peer organization and the six new ones
    assert all(
        len(p["sessions"]) == 2
        and p["locations"] == [{"name": "Library Hall", "address": {"city": "Springfield"}}]
        for o in with_programs
        for p in o["programs"]["nodes"]
        if p["name"] == "Hearing Voices Group"
    )
    assert sum(len(o["supporters"]["nodes"]) for o in many["organizations"]["nodes"]) == 3 + 6
    assert len(nine.statements) == len(three.statements), (three.statements, nine.statements)
    # The organizations, then one batch each for programs, supporters (+ certifications),
    # sessions and locations, each in its own short transaction.
    assert len(three.statements) <= 19, three.statements


async def test_referrals_of_many_patients_run_the_same_statements_as_of_two(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _fill_inbox(network, 20)  # ten patients, two referrals each
    peer = await GraphQL.as_organization(client, pool, network.peer)
    async with pool.acquire() as connection:
        patient_ids = [
            str(row["patient_id"])
            for row in await connection.fetch(
                "SELECT DISTINCT patient_id FROM referrals ORDER BY patient_id"
            )
        ]
    assert len(patient_ids) == 10

    def representations(ids: list[str]) -> list[dict[str, str]]:
        return [{"__typename": "Patient", "id": i} for i in ids]

    await peer.data(PATIENT_REFERRALS, representations=representations(patient_ids[:1]))
    with counting_statements(app) as two:
        few = await peer.data(PATIENT_REFERRALS, representations=representations(patient_ids[:2]))
    with counting_statements(app) as ten:
        many = await peer.data(PATIENT_REFERRALS, representations=representations(patient_ids))

    assert [len(p["referrals"]["nodes"]) for p in few["_entities"]] == [2, 2]
    assert [len(p["referrals"]["nodes"]) for p in many["_entities"]] == [2] * 10
    for patient in many["_entities"]:
        assert {r["patient"]["familyName"] for r in patient["referrals"]["nodes"]} <= {
            "Testperson",
            "Sampleton",
        }
    assert len(ten.statements) == len(two.statements), (two.statements, ten.statements)
    referral_searches = [s for s in ten.statements if "FROM referrals" in s and "ANY" in s]
    assert sum("PARTITION BY patient_id" in s for s in referral_searches) == 1


PAGE_WITH_RELATIONS = """
query Inbox($first: Int!) {
  referrals(first: $first, filter: {box: INBOX}) {
    edges { node { id status priority patient { givenName familyName } program { name } } }
  }
}"""

ONE_WITH_RELATIONS = """
query One($id: ID!) {
  referral(id: $id) { id status priority patient { givenName familyName } program { name } }
}"""


async def test_a_page_or_a_referral_with_patient_and_program_is_one_read_and_one_audit_insert(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _fill_inbox(network, 12)
    peer = await GraphQL.as_organization(client, pool, network.peer)
    first = await peer.data(PAGE_WITH_RELATIONS, first=1)  # warm the caches
    one_id = first["referrals"]["edges"][0]["node"]["id"]
    await peer.data(ONE_WITH_RELATIONS, id=one_id)

    with counting_statements(app) as page_run:
        page = await peer.data(PAGE_WITH_RELATIONS, first=10)
    with counting_statements(app) as one_run:
        one = await peer.data(ONE_WITH_RELATIONS, id=one_id)

    nodes = [edge["node"] for edge in page["referrals"]["edges"]]
    assert len(nodes) == 10
    assert all(n["patient"]["familyName"] and n["program"]["name"] for n in nodes)
    assert one["referral"]["patient"] == nodes[0]["patient"]
    # The referrals with their patients' consents, patients and programs in one SELECT, then
    # one INSERT of every audit row (the referrals' and the patients'): no transaction around
    # them, a read needs none (UnitOfWork.autocommit).
    for run in (page_run, one_run):
        kinds = [statement.split()[0] for statement in run.statements]
        assert kinds == ["SELECT", "INSERT"], run.statements


async def test_a_page_with_a_withheld_patient_is_still_one_read_and_one_audit_insert(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _fill_inbox(network, 12)
    await pool.execute(
        "UPDATE consents SET revoked = true, revoked_at = now(), revocation_reason = 'stop' "
        "WHERE patient_id = $1 AND recipient_organization_id = $2",
        network.patient.id,
        network.peer.id,
    )
    peer = await GraphQL.as_organization(client, pool, network.peer)
    await peer.run(PAGE_WITH_RELATIONS, first=1)  # warm the caches

    with counting_statements(app) as run:
        answer = await peer.run(PAGE_WITH_RELATIONS, first=10)

    codes = {error["extensions"]["code"] for error in answer["errors"]}
    assert codes == {"CONSENT_REVOKED"}, answer["errors"]
    nodes = [edge["node"] for edge in answer["data"]["referrals"]["edges"]]
    assert len(nodes) == 10 and any(n["patient"] is None for n in nodes)
    # The refusal's reason comes from the consents the SELECT joined in: no query of its own.
    assert [statement.split()[0] for statement in run.statements] == ["SELECT", "INSERT"]
