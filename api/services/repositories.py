"""Repository protocols the services depend on; `api.db` implements them over asyncpg.

Repositories never open transactions: the unit of work owns the boundary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol
from uuid import UUID

from api.domain.audit import AuditEvent, AuditRecord
from api.domain.consents import Consent, ConsentScope, ConsentTerms
from api.domain.deliveries import Subscription
from api.domain.documents import ConsentForm
from api.domain.events import DomainEvent
from api.domain.locations import Location
from api.domain.organizations import Organization, OrganizationKind
from api.domain.outcomes import OutcomeMeasure
from api.domain.patients import Patient, PatientIdentifier
from api.domain.procedures import Procedure
from api.domain.programs import PeerProgram
from api.domain.referrals import Priority, Referral, StatusChange
from api.domain.sessions import Attendance, PeerSession
from api.domain.staff import ConsoleSession, StaffRole, StaffUser
from api.domain.supporters import PeerSupporter
from api.domain.timeliness import FirstContactTimer, Target
from api.domain.verbatim import Verbatim
from api.services.filters import (
    LocationFilter,
    ProcedureFilter,
    ProgramFilter,
    ReferralFilter,
    SupporterFilter,
)
from api.services.pagination import Keyset, Order


@dataclass(frozen=True)
class ReferralRelations:
    """The relations a read of referrals joins in: those the caller will show with them."""

    patient: bool = False
    program: bool = False
    outputs: bool = False  # the ids of the Procedures recorded for it (a Task's `output`)


NO_RELATIONS = ReferralRelations()


@dataclass(frozen=True)
class ReferralRead:
    """A referral as one statement reads it: its patient's consents in force under the read's
    `ConsentScope` (none without one) and the relations the read joined (None otherwise)."""

    referral: Referral
    consents: tuple[ConsentTerms, ...] = ()
    patient: Patient | None = None
    program: PeerProgram | None = None
    outputs: tuple[UUID, ...] | None = None


class OrganizationRepository(Protocol):
    async def add(self, name: str, kind: OrganizationKind, npi: str | None) -> Organization: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[Organization | None]:
        """One entry per id, in order; None where absent."""

    async def list(self, after_name: str | None, limit: int) -> list[Organization]: ...
    async def find_by_name(self, name: str) -> Organization | None: ...


class ProgramRepository(Protocol):
    async def save(self, program: PeerProgram) -> PeerProgram:
        """Insert, or update when the stored version is `version - 1` (else VersionConflict)."""

    async def get_many(self, ids: Sequence[UUID]) -> list[PeerProgram | None]: ...
    async def search(
        self,
        where: ProgramFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[PeerProgram]: ...
    async def for_organizations(
        self, organization_ids: Sequence[UUID], after: Keyset | None, limit: int
    ) -> list[PeerProgram]:
        """Up to `limit` programs of each organization, newest change first."""


class LocationRepository(Protocol):
    async def save(self, location: Location) -> Location:
        """Insert, or update when the stored version is `version - 1` (else VersionConflict)."""

    async def get_many(self, ids: Sequence[UUID]) -> list[Location | None]: ...
    async def search(
        self,
        where: LocationFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[Location]: ...


class SupporterRepository(Protocol):
    async def save(self, supporter: PeerSupporter) -> PeerSupporter: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[PeerSupporter | None]: ...
    async def get_for_update(self, supporter_id: UUID) -> PeerSupporter | None:
        """Lock the supporter row so concurrent assignments count the caseload one at a time."""

    async def search(
        self, where: SupporterFilter, after: Keyset | None, limit: int
    ) -> list[PeerSupporter]: ...
    async def for_organizations(
        self, organization_ids: Sequence[UUID], after: Keyset | None, limit: int
    ) -> list[PeerSupporter]:
        """Up to `limit` supporters of each organization, newest change first."""

    async def open_caseload(self, supporter_id: UUID) -> int: ...


class PatientRepository(Protocol):
    async def add(self, patient: Patient) -> Patient: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[Patient | None]: ...
    async def get_many_with_consents(
        self, ids: Sequence[UUID], scope: ConsentScope | None
    ) -> list[tuple[Patient, tuple[ConsentTerms, ...]] | None]:
        """`get_many`, each patient with their consents in force under `scope` (read in the
        same statement)."""

    async def find_by_identifier(self, identifier: PatientIdentifier) -> list[Patient]:
        """Every organization's patients with this identifier (unique per organization)."""
    async def referral_organizations(self, patient_ids: Sequence[UUID]) -> dict[UUID, set[UUID]]:
        """Per patient, the organizations requesting or performing one of their referrals
        (patients without a referral are left out)."""

    async def of_caseload(self, supporter_id: UUID, patient_ids: Sequence[UUID]) -> set[UUID]:
        """Of these patients, those of a referral assigned to the supporter (any status)."""


class ConsentRepository(Protocol):
    async def add(self, consent: Consent) -> Consent: ...
    async def save(self, consent: Consent) -> Consent: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[Consent | None]: ...
    async def for_patients(self, patient_ids: Sequence[UUID]) -> list[Consent]: ...
    async def get_for_update(self, consent_id: UUID) -> Consent | None: ...
    async def hold_for_patient(self, patient_id: UUID) -> None:
        """Share-lock the patient's consents until the transaction ends, so a write relying on
        them commits before a concurrent revocation or sees it (no write skew)."""

    async def serialise_sharing(self, patient_id: UUID, recipient_organization_id: UUID) -> None:
        """One grant or bulk revocation of a patient's sharing with a recipient at a time."""

    async def sharing_for_update(
        self, patient_id: UUID, recipient_organization_id: UUID
    ) -> list[Consent]:
        """The patient's consents naming the recipient, locked for update (in id order)."""


class ReferralRepository(Protocol):
    async def add(self, referral: Referral, first: StatusChange) -> Referral: ...
    async def save(self, referral: Referral, change: StatusChange | None) -> Referral:
        """Write the new state if the stored version is `version - 1`, else VersionConflict."""

    async def record_task(
        self, referral_id: UUID, verbatim: Verbatim, at: datetime
    ) -> Referral | None:
        """Mark the referral's Task created (with these kept elements); None if it already was.
        A new version unless the referral was created in the same transaction."""

    async def get_many(self, ids: Sequence[UUID]) -> list[Referral | None]: ...
    async def get_many_with_consents(
        self,
        ids: Sequence[UUID],
        scope: ConsentScope | None,
        relations: ReferralRelations = NO_RELATIONS,
    ) -> list[ReferralRead | None]:
        """`get_many`, each referral with its patient's consents in force under `scope` and
        the `relations`, all read in one statement."""

    async def get_for_update(self, referral_id: UUID) -> Referral | None: ...
    async def search(
        self,
        organization_id: UUID,
        where: ReferralFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[Referral]: ...
    async def search_with_consents(
        self,
        organization_id: UUID,
        where: ReferralFilter,
        after: Keyset | None,
        limit: int,
        order: Order,
        scope: ConsentScope | None,
        relations: ReferralRelations = NO_RELATIONS,
    ) -> list[ReferralRead]:
        """`search`, each referral with its patient's consents in force under `scope` and the
        `relations`, all read in one statement."""

    async def search_for_patients(
        self,
        organization_id: UUID,
        patient_ids: Sequence[UUID],
        where: ReferralFilter,
        after: Keyset | None,
        limit: int,
    ) -> list[Referral]:
        """`search` for each patient: up to `limit` referrals per patient, newest change first."""

    async def history_for(self, referral_ids: Sequence[UUID]) -> dict[UUID, list[StatusChange]]: ...


class SessionRepository(Protocol):
    async def add(self, session: PeerSession) -> PeerSession: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[PeerSession | None]: ...
    async def for_programs(self, program_ids: Sequence[UUID], limit: int) -> list[PeerSession]:
        """Up to `limit` sessions of each program, latest start first."""

    async def add_attendance(self, attendance: Attendance) -> Attendance:
        """Insert or replace the patient's attendance for the session."""

    async def attendance_for(
        self, *, session_ids: Sequence[UUID] = (), patient_ids: Sequence[UUID] = ()
    ) -> list[Attendance]: ...
    async def attendance_by_ids(self, ids: Sequence[UUID]) -> list[Attendance | None]: ...


class OutcomeRepository(Protocol):
    async def add(self, measure: OutcomeMeasure) -> OutcomeMeasure: ...
    async def for_patients(self, patient_ids: Sequence[UUID]) -> list[OutcomeMeasure]: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[OutcomeMeasure | None]: ...


class ProcedureRepository(Protocol):
    async def add(self, procedure: Procedure) -> Procedure: ...
    async def update(self, procedure: Procedure) -> Procedure:
        """Write the new state if the stored version is `version - 1`, else VersionConflict."""

    async def get_many(self, ids: Sequence[UUID]) -> list[Procedure | None]: ...
    async def ids_for_referrals(
        self, organization_id: UUID, referral_ids: Sequence[UUID]
    ) -> list[tuple[UUID, UUID]]:
        """(referral id, Procedure id), oldest first, of the referrals the organization is
        party to."""
    async def search(
        self,
        organization_id: UUID,
        where: ProcedureFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[Procedure]:
        """Procedures of referrals the organization is party to, in `order`."""


class ConsentFormRepository(Protocol):
    async def add(self, form: ConsentForm) -> ConsentForm: ...
    async def get_many(self, ids: Sequence[UUID]) -> list[ConsentForm | None]: ...
    async def for_patients(self, patient_ids: Sequence[UUID]) -> list[ConsentForm]: ...


class AuditRepository(Protocol):
    async def add_many(self, records: Sequence[AuditRecord]) -> None: ...
    async def for_patient(
        self,
        patient_id: UUID,
        organization_id: UUID | None,
        before: datetime | None,
        limit: int,
        *,
        before_id: UUID | None = None,
    ) -> list[AuditEvent]:
        """Newest first; `before`/`before_id` continue after the last event of a page."""

    async def get_many(self, ids: Sequence[UUID]) -> list[AuditEvent | None]: ...
    async def recorded_between(
        self,
        since: datetime,
        until: datetime,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[AuditEvent]:
        """Events recorded in [since, until), oldest first; `after` continues a page."""

    async def disclosures(
        self,
        patient_id: UUID,
        holder_id: UUID,
        since: datetime,
        until: datetime,
        after: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[AuditEvent]:
        """Successful reads of the patient's data by organizations other than the holder."""


class OutboxRepository(Protocol):
    async def add_many(self, events: Sequence[DomainEvent]) -> None: ...


class SubscriptionRepository(Protocol):
    async def add(
        self, subscription: Subscription, secret_sealed: bytes, kek_id: str
    ) -> Subscription:
        """Store it as requested and queue its handshake."""

    async def get(self, subscription_id: UUID) -> Subscription | None: ...
    async def of_organization(
        self, organization_id: UUID, after: UUID | None, limit: int
    ) -> Sequence[Subscription]: ...
    async def delete(self, subscription_id: UUID) -> None: ...


class IdempotencyRepository(Protocol):
    async def reserve(self, organization_id: UUID, client_id: str, key: str) -> None:
        """Hold the key until the transaction ends: a concurrent request with it waits (a
        bounded time, then IdempotencyKeyInUse) and sees what the first one stored."""

    async def find(
        self, organization_id: UUID, client_id: str, key: str
    ) -> tuple[str, str, dict[str, Any]] | None:
        """(operation, request hash, stored response) for a key already used."""

    async def add(
        self,
        organization_id: UUID,
        client_id: str,
        key: str,
        operation: str,
        request_hash: str,
        response: dict[str, Any],
    ) -> None: ...


class MetricsRepository(Protocol):
    async def program_counts(
        self, program_id: UUID, since: datetime, until: datetime
    ) -> dict[str, int]:
        """De-identified counts (referrals by status, attendance, distinct participants)."""


class StaffRepository(Protocol):
    """Staff accounts of the console, their sessions and failed sign-ins."""

    async def add(
        self,
        organization_id: UUID,
        email: str,
        role: StaffRole,
        supporter_id: UUID | None,
        password_hash: str,
    ) -> StaffUser: ...
    async def by_email(self, email: str) -> tuple[StaffUser, str] | None:
        """The account (any case of the address) and its password hash."""

    async def list(self, organization_id: UUID | None) -> list[StaffUser]: ...
    async def disable(self, user_id: UUID, at: datetime) -> None: ...
    async def set_password(self, user_id: UUID, password_hash: str, at: datetime) -> None: ...
    async def add_session(
        self, token_hash: bytes, user_id: UUID, csrf_token: str, at: datetime
    ) -> None: ...
    async def session(self, token_hash: bytes) -> ConsoleSession | None: ...
    async def touch_session(self, token_hash: bytes, at: datetime) -> None: ...
    async def end_session(self, token_hash: bytes) -> None: ...
    async def failures_since(
        self, email_key: str, source_ip: str | None, since: datetime
    ) -> tuple[int, int]: ...
    async def add_failure(self, email_key: str, source_ip: str | None, at: datetime) -> None: ...
    async def clear_failures(self, email_key: str) -> None: ...
    async def keep_sign_in_flow(self, key: str, data: str, expires_at: datetime) -> None:
        """Keep a single sign-on in flight until `expires_at` (sweeping expired ones)."""

    async def take_sign_in_flow(self, key: str, now: datetime) -> str | None:
        """A flow's data, once: it is deleted as it is read (None if unknown or expired)."""


class TimerRepository(Protocol):
    """First-contact targets per organization and one timer per referral (timeliness.py)."""

    async def targets_of(self, organization_id: UUID) -> dict[Priority, Target]: ...
    async def set_targets(
        self, organization_id: UUID, targets: Mapping[Priority, Target | None]
    ) -> None: ...
    async def start(self, referral_id: UUID, timer: FirstContactTimer) -> None: ...
    async def claim_due(
        self, now: datetime, limit: int
    ) -> list[tuple[UUID, FirstContactTimer]]:
        """Due timers, locked to this transaction; those another one holds are skipped."""

    async def save(self, referral_id: UUID, timer: FirstContactTimer) -> None: ...
    async def stop(self, referral_id: UUID) -> None: ...


class UnitOfWork(Protocol):
    """One transaction. `async with uow:` begins it; leaving without `commit()` rolls back.

    Use cases hand it what their change caused: domain events (`collect`) and audit records
    (`record`). `commit()` writes them all, in the order given, in one audit INSERT and one
    outbox INSERT just before COMMIT; a rollback discards them with the change.

    Denials recorded with `record_denial` survive the rollback: they are written in a
    transaction of their own, because a refused access must stay auditable.
    """

    @property
    def organizations(self) -> OrganizationRepository: ...
    @property
    def programs(self) -> ProgramRepository: ...
    @property
    def locations(self) -> LocationRepository: ...
    @property
    def supporters(self) -> SupporterRepository: ...
    @property
    def patients(self) -> PatientRepository: ...
    @property
    def consents(self) -> ConsentRepository: ...
    @property
    def referrals(self) -> ReferralRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def outcomes(self) -> OutcomeRepository: ...
    @property
    def audit(self) -> AuditRepository: ...
    @property
    def outbox(self) -> OutboxRepository: ...
    @property
    def timers(self) -> TimerRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def metrics(self) -> MetricsRepository: ...
    @property
    def procedures(self) -> ProcedureRepository: ...
    @property
    def consent_forms(self) -> ConsentFormRepository: ...
    @property
    def staff(self) -> StaffRepository: ...
    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...
    async def commit(self) -> None: ...
    def collect(self, *events: DomainEvent) -> None:
        """Queue events for the outbox, written at commit (discarded on rollback)."""

    def record(self, *records: AuditRecord) -> None:
        """Queue audit records, written at commit (discarded on rollback)."""

    def record_denial(self, record: AuditRecord) -> None: ...

    def autocommit(self) -> UnitOfWork:
        """Enter it for a read: no transaction, each statement commits by itself. A read
        whose one SELECT decides and fetches (one snapshot) and whose audit INSERT follows
        needs no BEGIN and COMMIT around them: two round trips fewer on every read. `commit()`
        still marks success; the audit rows are written before anything is answered."""
        ...
