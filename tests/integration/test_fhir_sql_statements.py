"""The FHIR read path's SQL, pinned: a Task search runs the same four statements for a page of 3
and of 30, with or without `_include=Task:focus` (the focus ServiceRequest is the referral the
Task page already read, decided and audited), and a Task read by id runs the same four."""

from __future__ import annotations

import asyncpg
import httpx
from fhir_flows import referral_transaction
from fhir_support import Fhir, entries
from network import Network, consent_to, register_patient
from sql_statements import counting_statements
from starlette.applications import Starlette

from api.domain.consents import DataClass
from api.services import referrals

PAGE = 30


async def _refer_many(network: Network, count: int) -> list[str]:
    """`count` referrals from the clinic to the peer organization, each for its own consenting
    patient."""
    made = []
    for _ in range(count):
        patient = await register_patient(network)
        await consent_to(
            network, patient.id, network.peer, DataClass.DEMOGRAPHICS, DataClass.REFERRAL
        )
        view = await referrals.create_referral(
            network.uow(),
            network.as_clinic,
            referrals.CreateReferral(
                patient_id=patient.id, performer_organization_id=network.peer.id
            ),
        )
        made.append(str(view.referral.id))
    return made


async def _statements(app: Starlette, peer: Fhir, path: str) -> list[str]:
    with counting_statements(app) as counted:
        bundle = await peer.ok("GET", path)
    assert bundle["resourceType"] in ("Bundle", "Task")
    return counted.statements


async def test_task_search_runs_the_same_statements_for_3_and_30_with_or_without_focus(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    await _refer_many(network, PAGE)
    peer = await Fhir.as_organization(client, pool, network.peer)
    owner = f"Task?owner=Organization/{network.peer.id}"
    await peer.ok("GET", f"{owner}&_count=1")  # warm the token cache

    small = await _statements(app, peer, f"{owner}&_count=3")
    large = await _statements(app, peer, f"{owner}&_count={PAGE}")
    assert len(small) == len(large), (small, large)
    with_focus = await _statements(app, peer, f"{owner}&_count={PAGE}&_include=Task:focus")
    assert len(with_focus) == len(large), (large, with_focus)
    bundle = await peer.ok("GET", f"{owner}&_count={PAGE}&_include=Task:focus")
    kinds = [resource["resourceType"] for resource in entries(bundle)]
    assert kinds.count("Task") == kinds.count("ServiceRequest") == PAGE
    # The page with its consents in force and its Tasks' outputs joined in, then every audit
    # row in one INSERT; no transaction around them (a read needs none).
    assert [statement.split()[0] for statement in large] == ["SELECT", "INSERT"], large


async def test_a_task_read_runs_two_statements(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    (made,) = await _refer_many(network, 1)
    peer = await Fhir.as_organization(client, pool, network.peer)
    await peer.ok("GET", f"Task/{made}")  # warm the token cache
    read = await _statements(app, peer, f"Task/{made}")
    assert [statement.split()[0] for statement in read] == ["SELECT", "INSERT"], read


async def test_a_referral_transaction_writes_its_audit_rows_and_events_in_one_insert_each(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    # Five entries (Patient, two Consents, ServiceRequest, Task), five use cases sharing one
    # transaction: what they record and collect is written once, at its commit.
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    await clinic.ok("POST", "", referral_transaction(network))  # warm the token cache
    with counting_statements(app) as counted:
        await clinic.ok("POST", "", referral_transaction(network))
    audit_inserts = [s for s in counted.statements if "INSERT INTO audit_events" in s]
    outbox_inserts = [s for s in counted.statements if "INSERT INTO outbox" in s]
    assert (len(audit_inserts), len(outbox_inserts)) == (1, 1), counted.statements
    assert counted.statements[-1].split()[0].upper() == "COMMIT;", counted.statements
    events = await pool.fetch(
        "SELECT event_type FROM outbox WHERE $1 = ANY(organization_ids) ORDER BY id",
        network.clinic.id,
    )
    # Written in the order the entries caused them.
    assert [e["event_type"] for e in events][-3:] == [
        "ConsentGranted",
        "ConsentGranted",
        "ReferralCreated",
    ]
