"""Consent and idempotency under concurrency: many simultaneous calls through the services on a
real pool, invariants checked in SQL.

- The same idempotency key, sent many times at once: one write; every caller gets its result or
  a retryable IDEMPOTENCY_KEY_IN_USE, never a unique-constraint CONFLICT; every replay audited.
- A referral racing a revocation never commits citing a consent revoked before it was created.
- Identical grants at once leave one active consent; revoking all sharing leaves none.

Where an interleaving matters, the test forces it: the first transaction is held just before
its commit (`HeldCommit`) until the second one is seen waiting on a lock in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import secrets
from asyncio import FIRST_COMPLETED
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import pytest
import pytest_asyncio
from network import Network, register_patient

from api.db import idempotency as idempotency_rows
from api.db.uow import PostgresUnitOfWork
from api.domain.consents import DataClass, Purpose
from api.domain.errors import Conflict, ConsentRequired, IdempotencyKeyInUse
from api.domain.outcomes import Instrument
from api.domain.patients import PatientIdentifier
from api.domain.referrals import Transition
from api.services import consent_revocations, consents, outcomes, patients, referrals
from api.services.consent_revocations import RevokeConsents
from api.settings import Settings

AT_ONCE = 24
T = TypeVar("T")
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # A real pool of 10 connections, all open before the calls start so they run side by side;
    # callers beyond it queue for a connection (not a timeout).
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        environment="development",
        db_pool_min_size=10,
        db_pool_max_size=10,
        db_acquire_timeout_s=120.0,
    )


class HeldCommit(PostgresUnitOfWork):
    """A unit of work that stops just before committing (its locks held) until released."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.at_commit = asyncio.Event()
        self.release = asyncio.Event()

    async def commit(self) -> None:
        self.at_commit.set()
        await self.release.wait()
        await super().commit()


class Interleaving:
    """Starts calls as tasks and holds transactions at commit; whatever a failed test left held
    or running is released and awaited at teardown, so the pool can close."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self._held: list[HeldCommit] = []
        self._tasks: list[asyncio.Task[Any]] = []

    def held(self) -> HeldCommit:
        self._held.append(HeldCommit(self.pool))
        return self._held[-1]

    def start(self, call: Awaitable[T]) -> asyncio.Task[T]:
        async def run() -> T:
            return await call

        self._tasks.append(asyncio.create_task(run()))
        return self._tasks[-1]

    async def until_blocked(self, task: asyncio.Task[Any]) -> None:
        """Return once a transaction of this database waits on a lock (row, advisory...);
        fail if the task ends first, having gone through without waiting."""
        watcher = asyncio.create_task(self._a_transaction_waits_for_a_lock())
        done, _ = await asyncio.wait({task, watcher}, timeout=60, return_when=FIRST_COMPLETED)
        watcher.cancel()
        assert watcher in done, "the second transaction did not wait for the first"

    async def _a_transaction_waits_for_a_lock(self) -> None:
        while True:
            async with self.pool.acquire() as conn:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            if waiting:
                return
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        for held in self._held:
            held.release.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest_asyncio.fixture
async def interleaving(network: Network) -> AsyncIterator[Interleaving]:
    interleaving = Interleaving(network.pool)
    try:
        yield interleaving
    finally:
        await interleaving.close()


async def at_once(call: Callable[[], Awaitable[Any]], times: int = AT_ONCE) -> list[Any]:
    return await asyncio.gather(*(call() for _ in range(times)), return_exceptions=True)


def one_answer(results: list[Any], id_of: Callable[[Any], UUID]) -> UUID:
    """Every caller got the same record, or was told to retry (the key still in use)."""
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, IdempotencyKeyInUse) for r in refused), refused
    ids = {id_of(r) for r in results if not isinstance(r, BaseException)}
    assert len(ids) == 1, ids
    return ids.pop()


async def scalar(pool: asyncpg.Pool, sql: str, *args: object) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def replays_audited(pool: asyncpg.Pool, resource_id: UUID) -> int:
    return int(
        await scalar(
            pool,
            "SELECT count(*) FROM audit_events WHERE resource_id = $1 AND action = 'R' "
            "AND detail_code = 'IDEMPOTENT_REPLAY'",
            resource_id,
        )
    )


def referral_command(network: Network) -> referrals.CreateReferral:
    return referrals.CreateReferral(
        patient_id=network.patient.id,
        performer_organization_id=network.peer.id,
        program_id=network.program.id,
        reason_text="low mood",
    )


def grant_command(patient_id: UUID, recipient_id: UUID) -> consents.GrantConsent:
    return consents.GrantConsent(
        patient_id=patient_id,
        recipient_organization_id=recipient_id,
        purposes=frozenset({Purpose.TREATMENT}),
        data_classes=frozenset({DataClass.DEMOGRAPHICS, DataClass.REFERRAL}),
    )


# --- one idempotency key, many callers --------------------------------------------------------


async def test_one_key_sent_at_once_creates_one_referral_and_replays_it_to_everyone(
    network: Network,
) -> None:
    key = f"order-{secrets.token_hex(4)}"
    results = await at_once(
        lambda: referrals.create_referral(
            network.uow(), network.as_clinic, referral_command(network), idempotency_key=key
        )
    )
    referral_id = one_answer(results, lambda view: view.referral.id)
    assert await scalar(network.pool, "SELECT count(*) FROM referrals") == 1
    assert await scalar(network.pool, "SELECT count(*) FROM idempotency_keys WHERE key = $1", key)
    answered = sum(not isinstance(r, BaseException) for r in results)
    assert await replays_audited(network.pool, referral_id) == answered - 1


async def test_one_key_sent_at_once_registers_one_patient(network: Network) -> None:
    before = await scalar(network.pool, "SELECT count(*) FROM patients")
    command = patients.RegisterPatient(
        identifiers=(PatientIdentifier(MRN_SYSTEM, f"MRN-{secrets.token_hex(4)}"),),
        given_name="Cam",
        family_name="Concurrent",
    )
    results = await at_once(
        lambda: patients.register_patient(
            network.uow(), network.as_clinic, command, idempotency_key="register-cam"
        )
    )
    patient_id = one_answer(results, lambda patient: patient.id)
    assert await scalar(network.pool, "SELECT count(*) FROM patients") == before + 1
    answered = sum(not isinstance(r, BaseException) for r in results)
    assert await replays_audited(network.pool, patient_id) == answered - 1
    # A replay is a read of what was created, not a second creation.
    assert (
        await scalar(
            network.pool,
            "SELECT count(*) FROM audit_events WHERE resource_id = $1 AND action = 'C'",
            patient_id,
        )
        == 1
    )


async def test_one_key_sent_at_once_grants_one_consent(network: Network) -> None:
    patient = await register_patient(network)
    command = grant_command(patient.id, network.peer.id)
    results = await at_once(
        lambda: consents.grant_consent(
            network.uow(), network.as_clinic, command, idempotency_key="grant-1"
        )
    )
    one_answer(results, lambda consent: consent.id)
    assert (
        await scalar(
            network.pool, "SELECT count(*) FROM consents WHERE patient_id = $1", patient.id
        )
        == 1
    )


async def test_one_key_sent_at_once_accepts_a_referral_once(network: Network) -> None:
    created = await referrals.create_referral(
        network.uow(), network.as_clinic, referral_command(network)
    )
    referral_id = created.referral.id
    results = await at_once(
        lambda: referrals.transition_referral(
            network.uow(),
            network.as_peer,
            referral_id,
            Transition.ACCEPT,
            idempotency_key="accept-1",
        )
    )
    one_answer(results, lambda view: view.referral.id)
    assert all(r.referral.version == 2 for r in results if not isinstance(r, BaseException)), (
        "every caller sees the accepted referral"
    )
    assert (
        await scalar(
            network.pool,
            "SELECT count(*) FROM referral_transitions WHERE referral_id = $1 "
            "AND to_status = 'accepted'",
            referral_id,
        )
        == 1
    )


async def test_one_key_sent_at_once_records_one_outcome_measure(network: Network) -> None:
    command = outcomes.RecordOutcomeMeasure(
        patient_id=network.patient.id, instrument=Instrument.GAD7, item_answers=(1,) * 7
    )
    results = await at_once(
        lambda: outcomes.record_outcome_measure(
            network.uow(), network.as_clinic, command, idempotency_key="gad7-1"
        )
    )
    measure_id = one_answer(results, lambda measure: measure.id)
    assert await scalar(network.pool, "SELECT count(*) FROM outcome_measures") == 1
    answered = sum(not isinstance(r, BaseException) for r in results)
    assert await replays_audited(network.pool, measure_id) == answered - 1


async def test_one_key_with_two_different_requests_at_once_writes_one_and_refuses_the_other(
    network: Network,
) -> None:
    routine = referral_command(network)
    other = referrals.CreateReferral(
        patient_id=network.patient.id,
        performer_organization_id=network.peer.id,
        reason_text="a different request under the same key",
    )
    calls = [routine, other] * (AT_ONCE // 2)
    results = await asyncio.gather(
        *(
            referrals.create_referral(
                network.uow(), network.as_clinic, command, idempotency_key="shared"
            )
            for command in calls
        ),
        return_exceptions=True,
    )
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert len({view.referral.id for view in answered}) == 1
    winner = answered[0].referral.reason_text
    for command, result in zip(calls, results, strict=True):
        if command.reason_text == winner:
            assert not isinstance(result, BaseException) or isinstance(
                result, IdempotencyKeyInUse
            ), result
        else:
            assert isinstance(result, IdempotencyKeyInUse) or (
                isinstance(result, Conflict) and "different request" in str(result)
            ), result
    assert await scalar(network.pool, "SELECT count(*) FROM referrals") == 1


async def test_a_duplicate_waits_for_the_first_request_and_replays_its_result(
    network: Network, interleaving: Interleaving
) -> None:
    holding = interleaving.held()
    first = interleaving.start(
        referrals.create_referral(
            holding, network.as_clinic, referral_command(network), idempotency_key="k"
        )
    )
    await holding.at_commit.wait()
    duplicate = interleaving.start(
        referrals.create_referral(
            network.uow(), network.as_clinic, referral_command(network), idempotency_key="k"
        )
    )
    await interleaving.until_blocked(duplicate)
    holding.release.set()
    assert (await duplicate).referral.id == (await first).referral.id
    assert await scalar(network.pool, "SELECT count(*) FROM referrals") == 1


async def test_a_duplicate_of_a_request_still_running_is_told_to_retry(
    network: Network, interleaving: Interleaving, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency_rows, "WAIT_FOR_FIRST_REQUEST_MS", 50)
    holding = interleaving.held()
    first = interleaving.start(
        referrals.create_referral(
            holding, network.as_clinic, referral_command(network), idempotency_key="k"
        )
    )
    await holding.at_commit.wait()
    duplicate = interleaving.start(
        referrals.create_referral(
            network.uow(), network.as_clinic, referral_command(network), idempotency_key="k"
        )
    )
    await asyncio.wait({duplicate}, timeout=60)
    assert duplicate.done(), "the duplicate still waits for the first request"
    with pytest.raises(IdempotencyKeyInUse):
        duplicate.result()
    holding.release.set()
    created = await first
    # Retried once the first request ended: its answer.
    again = await referrals.create_referral(
        network.uow(), network.as_clinic, referral_command(network), idempotency_key="k"
    )
    assert again.referral.id == created.referral.id
    # The shorter wait did not outlive its transaction: the connections' own setting is back.
    async with network.pool.acquire() as conn:
        assert await conn.fetchval("SHOW lock_timeout") == "0"


# --- consent write skew ------------------------------------------------------------------------

CITES_A_CONSENT_REVOKED_BEFORE_IT = (
    "SELECT count(*) FROM referrals r JOIN consents c ON c.id = r.consent_id "
    "WHERE c.revoked_at IS NOT NULL AND c.revoked_at <= r.created_at"
)


async def test_a_referral_racing_a_revocation_that_commits_first_is_refused(
    network: Network, interleaving: Interleaving
) -> None:
    revoking = interleaving.held()
    revocation = interleaving.start(
        consents.revoke_consent(revoking, network.as_clinic, network.consent.id)
    )
    await revoking.at_commit.wait()  # revoked, not yet committed
    referral = interleaving.start(
        referrals.create_referral(network.uow(), network.as_clinic, referral_command(network))
    )
    await interleaving.until_blocked(referral)
    revoking.release.set()
    await revocation
    with pytest.raises(ConsentRequired):
        await referral
    assert await scalar(network.pool, "SELECT count(*) FROM referrals") == 0
    assert await scalar(network.pool, CITES_A_CONSENT_REVOKED_BEFORE_IT) == 0


async def test_a_revocation_racing_a_referral_that_holds_the_consent_waits_for_it(
    network: Network, interleaving: Interleaving
) -> None:
    referring = interleaving.held()
    referral = interleaving.start(
        referrals.create_referral(referring, network.as_clinic, referral_command(network))
    )
    await referring.at_commit.wait()
    revocation = interleaving.start(
        consents.revoke_consent(network.uow(), network.as_peer, network.consent.id)
    )
    await interleaving.until_blocked(revocation)
    referring.release.set()
    created = (await referral).referral
    revoked = await revocation
    assert created.consent_id == revoked.id
    assert revoked.revoked_at is not None and revoked.revoked_at > created.created_at
    assert await scalar(network.pool, CITES_A_CONSENT_REVOKED_BEFORE_IT) == 0


async def test_many_referrals_racing_a_revocation_never_cite_it_after_it_was_revoked(
    network: Network,
) -> None:
    async def refer() -> object:
        return await referrals.create_referral(
            network.uow(), network.as_clinic, referral_command(network)
        )

    async def revoke() -> object:
        return await consents.revoke_consent(network.uow(), network.as_peer, network.consent.id)

    calls = [refer] * (AT_ONCE // 2) + [revoke] + [refer] * (AT_ONCE // 2)
    results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
    for result in results:
        assert not isinstance(result, BaseException) or isinstance(result, ConsentRequired), result
    assert await scalar(network.pool, CITES_A_CONSENT_REVOKED_BEFORE_IT) == 0
    # Each created referral's audit row names the consent it relied on, in force at the time.
    assert (
        await scalar(
            network.pool,
            "SELECT count(*) FROM audit_events a JOIN consents c ON c.id = ANY(a.consent_ids) "
            "WHERE a.operation = 'createReferral' AND a.outcome = 'success' "
            "AND c.revoked_at <= a.recorded_at",
        )
        == 0
    )


# --- duplicate grants and revoking all sharing -------------------------------------------------


ACTIVE_SHARING = (
    "SELECT count(*) FROM consents WHERE patient_id = $1 AND recipient_organization_id = $2 "
    "AND NOT revoked"
)


async def test_an_identical_grant_waits_for_the_first_and_returns_its_consent(
    network: Network, interleaving: Interleaving
) -> None:
    patient = await register_patient(network)
    command = grant_command(patient.id, network.peer.id)
    holding = interleaving.held()
    first = interleaving.start(consents.grant_consent(holding, network.as_clinic, command))
    await holding.at_commit.wait()
    second = interleaving.start(consents.grant_consent(network.uow(), network.as_clinic, command))
    await interleaving.until_blocked(second)
    holding.release.set()
    assert (await second).id == (await first).id
    assert await scalar(network.pool, ACTIVE_SHARING, patient.id, network.peer.id) == 1


async def test_identical_grants_without_a_key_at_once_leave_one_active_consent(
    network: Network,
) -> None:
    patient = await register_patient(network)
    command = grant_command(patient.id, network.peer.id)
    results = await at_once(
        lambda: consents.grant_consent(network.uow(), network.as_clinic, command)
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len({consent.id for consent in results}) == 1
    assert await scalar(network.pool, ACTIVE_SHARING, patient.id, network.peer.id) == 1
    # One recorded; the other answers are audited as returning the consent already granted.
    assert (
        await scalar(
            network.pool,
            "SELECT count(*) FROM audit_events WHERE patient_id = $1 "
            "AND operation = 'grantConsent' AND detail_code = 'ALREADY_GRANTED'",
            patient.id,
        )
        == AT_ONCE - 1
    )


async def test_grants_racing_revocations_of_all_sharing_leave_at_most_one_active_consent(
    network: Network,
) -> None:
    patient = await register_patient(network)
    command = grant_command(patient.id, network.peer.id)

    async def grant() -> object:
        return await consents.grant_consent(network.uow(), network.as_clinic, command)

    async def revoke_all() -> object:
        return await consent_revocations.revoke_consents(
            network.uow(), network.as_peer, RevokeConsents(patient.id, network.peer.id)
        )

    calls = [grant, grant, revoke_all] * (AT_ONCE // 3)
    results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert await scalar(network.pool, ACTIVE_SHARING, patient.id, network.peer.id) <= 1
    # Every consent revoked was revoked by exactly one call, and audited once.
    revoked_ids = [c.id for r in results if isinstance(r, list) for c in r]
    assert len(revoked_ids) == len(set(revoked_ids))
    assert await scalar(
        network.pool,
        "SELECT count(*) FROM consents WHERE patient_id = $1 AND revoked",
        patient.id,
    ) == len(revoked_ids)
    assert await scalar(
        network.pool,
        "SELECT count(*) FROM audit_events WHERE patient_id = $1 "
        "AND operation = 'revokeConsents' AND outcome = 'success'",
        patient.id,
    ) == len(revoked_ids)


async def test_a_grant_with_another_period_or_data_is_recorded_beside_the_first(
    network: Network,
) -> None:
    patient = await register_patient(network)
    first = await consents.grant_consent(
        network.uow(), network.as_clinic, grant_command(patient.id, network.peer.id)
    )
    later = datetime.now(UTC) + timedelta(days=30)
    second = await consents.grant_consent(
        network.uow(),
        network.as_clinic,
        consents.GrantConsent(
            patient_id=patient.id,
            recipient_organization_id=network.peer.id,
            purposes=first.purposes,
            data_classes=first.data_classes,
            period_end=later,
        ),
    )
    assert second.id != first.id and second.period_end == later
    assert await scalar(network.pool, ACTIVE_SHARING, patient.id, network.peer.id) == 2
