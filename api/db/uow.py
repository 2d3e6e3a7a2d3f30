"""The PostgreSQL unit of work: one connection, one transaction, repositories bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import asyncpg

from api.db.audit import PostgresAuditRepository
from api.db.consent_forms import PostgresConsentFormRepository
from api.db.consents import PostgresConsentRepository
from api.db.errors import translate, unavailable
from api.db.idempotency import PostgresIdempotencyRepository
from api.db.locations import PostgresLocationRepository
from api.db.metrics import PostgresMetricsRepository
from api.db.organizations import PostgresOrganizationRepository
from api.db.outbox import PostgresOutboxRepository
from api.db.outcomes import PostgresOutcomeRepository
from api.db.patients import PostgresPatientRepository
from api.db.procedures import PostgresProcedureRepository
from api.db.programs import PostgresProgramRepository
from api.db.referrals import PostgresReferralRepository
from api.db.sessions import PostgresSessionRepository
from api.db.subscriptions import PostgresSubscriptionRepository
from api.db.supporters import PostgresSupporterRepository
from api.db.timers import PostgresTimerRepository
from api.db.users import PostgresStaffRepository
from api.domain.audit import AuditRecord
from api.domain.errors import DomainError
from api.domain.events import DomainEvent


class PostgresUnitOfWork:
    """`async with uow:` acquires a connection and begins; leaving without `commit()` rolls back.

    It may be entered again after it exits (each time a new transaction). What a use case
    collects and records is written by `commit()` in one INSERT per table (before COMMIT, in
    the order given); denials join the audit INSERT, or survive a rollback in their own
    transaction. `async with uow.autocommit():` enters it without a transaction, for reads
    (the Protocol says when).
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._connection: Any = None
        self._transaction: Any = None
        self._committed = False
        self._denials: list[AuditRecord] = []
        self._records: list[AuditRecord] = []
        self._events: list[DomainEvent] = []
        self._autocommit = False

    def _bind(self, connection: asyncpg.Connection) -> None:
        self.organizations = PostgresOrganizationRepository(connection)
        self.programs = PostgresProgramRepository(connection)
        self.locations = PostgresLocationRepository(connection)
        self.supporters = PostgresSupporterRepository(connection)
        self.patients = PostgresPatientRepository(connection)
        self.consents = PostgresConsentRepository(connection)
        self.referrals = PostgresReferralRepository(connection)
        self.sessions = PostgresSessionRepository(connection)
        self.outcomes = PostgresOutcomeRepository(connection)
        self.audit = PostgresAuditRepository(connection)
        self.outbox = PostgresOutboxRepository(connection)
        self.timers = PostgresTimerRepository(connection)
        self.idempotency = PostgresIdempotencyRepository(connection)
        self.metrics = PostgresMetricsRepository(connection)
        self.procedures = PostgresProcedureRepository(connection)
        self.consent_forms = PostgresConsentFormRepository(connection)
        self.staff = PostgresStaffRepository(connection)
        self.subscriptions = PostgresSubscriptionRepository(connection)

    async def __aenter__(self) -> PostgresUnitOfWork:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already open")
        autocommit, self._autocommit = self._autocommit, False  # this entry only
        self._connection = await self._pool.acquire()
        try:
            self._transaction = None if autocommit else self._connection.transaction()
            if self._transaction is not None:
                await self._transaction.start()
        except BaseException as error:
            await self._pool.release(self._connection)
            self._connection = None
            lost = unavailable(error)
            if lost is None:
                raise
            raise lost from error
        self._committed = False
        self._denials = []
        self._records = []
        self._events = []
        self._bind(self._connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        transaction, self._transaction = self._transaction, None
        lost = exc is not None and unavailable(exc) is not None
        try:
            if not self._committed:
                if transaction is not None:
                    await transaction.rollback()
                if self._denials:
                    async with connection.transaction():
                        await PostgresAuditRepository(connection).add_many(self._denials)
        except Exception as error:
            lost = True
            # Cancelled mid-statement (exc is no Exception), the connection is half-way through
            # an exchange and cannot roll back: what the rollback ran into must not replace the
            # cancellation, or a stopped background task would carry on as if it had failed.
            if exc is None or isinstance(exc, Exception):
                # A lost connection cannot roll back (the server already did): say the outage,
                # whether it struck the request's own statements or only this rollback.
                outage = unavailable(error)
                if outage is None:
                    raise
                if exc is None or unavailable(exc) is None:
                    raise outage from error
        finally:
            self._denials = []
            self._records = []
            self._events = []
            if lost:
                # Half-way through a protocol exchange: not fit to reset and reuse. Closed
                # here, the pool opens a new one on the next acquire.
                connection.terminate()
            await self._pool.release(connection)
        if exc is None:
            return
        translated: DomainError | None = unavailable(exc)
        if translated is None and isinstance(exc, asyncpg.PostgresError):
            translated = translate(exc)
        if translated is not None:
            raise translated from None

    async def commit(self) -> None:
        records, self._records = [*self._records, *self._denials], []
        self._denials = []
        events, self._events = self._events, []
        await self.audit.add_many(records)
        await self.outbox.add_many(events)
        if self._transaction is not None:
            await self._transaction.commit()
        self._committed = True

    def collect(self, *events: DomainEvent) -> None:
        self._events.extend(events)

    def record(self, *records: AuditRecord) -> None:
        self._records.extend(records)

    def record_denial(self, record: AuditRecord) -> None:
        self._denials.append(record)

    def autocommit(self) -> PostgresUnitOfWork:
        if self._connection is not None:
            raise RuntimeError("this unit of work is already open")
        self._autocommit = True
        return self
