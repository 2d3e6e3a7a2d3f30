"""The API served as the production service role (no owner rights): a whole referral over FHIR,
its audit rows sealed by `serve`'s periodic checkpoints, the trail verified, and the patient's
accounting of disclosures listing the peer organization's reads, produced only for the holder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fhir_flows import peer_side, referral_transaction
from fhir_support import Fhir
from network import Network, principal_for
from roles_support import ServiceRole, service_role

from api.app import create_app
from api.auth import kek
from api.auth.audit_seal import CheckpointVerification
from api.db.audit_evidence import PostgresAuditEvidenceStore
from api.db.signing_keys import SigningKeyRepository
from api.db.uow import PostgresUnitOfWork
from api.domain.errors import Forbidden
from api.services.audit_accounting import accounting_of_disclosures
from api.services.audit_integrity import verify_trail
from api.settings import Settings


@pytest.fixture
async def role(database_url: str) -> AsyncIterator[ServiceRole]:
    async with service_role(database_url) as created:
        yield created


@pytest.fixture
async def served(role: ServiceRole, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app on the service role's URL, sealing audit rows every 50 ms."""
    as_service = settings.model_copy(
        update={"database_url": role.url, "audit_checkpoint_interval_s": 0.05}
    )
    application = create_app(as_service)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def _referral_over_fhir(
    served: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> UUID:
    """Clinic posts the referral, the peer organization works it to completion; the patient."""
    clinic = await Fhir.as_organization(served, pool, network.clinic)
    peer = await Fhir.as_organization(served, pool, network.peer)
    started = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    posted = await clinic.ok("POST", "", referral_transaction(network))
    await peer_side(peer, network, started)
    return UUID(posted["entry"][0]["resource"]["id"])


async def _unsealed(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE xid >= coalesce("
            "(SELECT max(xid_to) FROM audit_checkpoints), '0')"
        ))


async def test_the_service_role_serves_a_referral_and_serve_seals_its_audit_trail(
    served: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, tmp_path: Path
) -> None:
    await _referral_over_fhir(served, pool, network)

    deadline = time.monotonic() + 30
    while await _unsealed(pool):
        assert time.monotonic() < deadline, "serve never sealed the trail"
        await asyncio.sleep(0.05)

    async with pool.acquire() as conn:
        keys = await SigningKeyRepository(conn).all()
        sealed = await conn.fetchval("SELECT sum(row_count) FROM audit_checkpoints")
        written = await conn.fetchval("SELECT count(*) FROM audit_events")
    report = await verify_trail(
        PostgresAuditEvidenceStore(pool),
        CheckpointVerification(keys, kek.load(None, tmp_path)),  # the app's generated KEK
    )
    assert report.clean, [str(f) for f in report.findings]
    # One row per record disclosed per request (the flow's _include=Task:focus adds none).
    assert sealed == written == report.sealed_rows >= 19


async def test_the_accounting_lists_the_peer_organizations_reads_for_the_holder_only(
    served: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    patient_id = await _referral_over_fhir(served, pool, network)
    now = datetime.now(UTC)
    period = (now - timedelta(hours=1), now + timedelta(minutes=1))

    accounting = await accounting_of_disclosures(
        lambda: PostgresUnitOfWork(pool), patient_id, *period,
        requested_by=principal_for(network.clinic),
    )
    assert accounting.holder.id == network.clinic.id
    assert {line.recipient_id for line in accounting.lines} == {network.peer.id}
    read = {t for line in accounting.lines for t in line.resource_types}
    assert {"Patient", "Referral", "Consent"} <= read
    # Reads of patient data name the consent they relied on and its purpose.
    patient_data = [line for line in accounting.lines if "Patient" in line.resource_types]
    assert patient_data and all(line.consent_ids for line in patient_data)
    assert {line.purpose for line in patient_data} == {"CAREMGT"}
    assert all(e.record.organization_id == network.peer.id for e in accounting.events)
    assert sum(line.count for line in accounting.lines) == len(accounting.events)

    with pytest.raises(Forbidden):
        await accounting_of_disclosures(
            lambda: PostgresUnitOfWork(pool), patient_id, *period,
            requested_by=principal_for(network.peer),
        )
    async with pool.acquire() as conn:
        decisions = await conn.fetch(
            "SELECT organization_id, outcome FROM audit_events "
            "WHERE operation = 'accountingOfDisclosures' ORDER BY recorded_at"
        )
    assert [(r["organization_id"], r["outcome"]) for r in decisions] == [
        (network.clinic.id, "success"),
        (network.peer.id, "denied"),
    ]
