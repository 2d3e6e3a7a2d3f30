"""Per-request DataLoaders: every relation batches through one service `get_*` call per tick.

Each batch runs in its own unit of work (its own connection), so loaders that fire in the same
tick run concurrently; the services decide scope, tenancy and consent for every key.

Lists under a parent (an organization's programs, a patient's referrals, ...) load through a
loader keyed by the parent's id, one per set of list arguments (page, filter): every parent in
the response that asks with the same arguments shares one batch service call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import cached_property
from typing import Any, TypeVar
from uuid import UUID

from strawberry.dataloader import DataLoader

from api.domain.consents import Consent
from api.domain.errors import DomainError, NotFound
from api.domain.locations import Location
from api.domain.organizations import Organization
from api.domain.outcomes import OutcomeMeasure
from api.domain.patients import Patient
from api.domain.principal import Principal
from api.domain.programs import PeerProgram
from api.domain.referrals import StatusChange
from api.domain.sessions import Attendance, PeerSession
from api.domain.supporters import PeerSupporter
from api.services import (
    consents,
    locations,
    organizations,
    outcomes,
    patients,
    procedures,
    programs,
    referrals,
    sessions,
    supporters,
)
from api.services.filters import ReferralFilter
from api.services.pagination import Page, PageRequest
from api.services.referrals import ReferralView
from api.services.repositories import ReferralRelations, UnitOfWork

UnitOfWorkFactory = Callable[[], UnitOfWork]
V = TypeVar("V")
# A service's batch read: one result per id, in order, or the reason for that id.
BatchRead = Callable[[UnitOfWork, Principal, list[UUID]], Awaitable[Sequence[V | DomainError]]]
OptionalRead = Callable[[UnitOfWork, Principal, Sequence[UUID]], Awaitable[list[V | None]]]


def _absent_as_not_found(resource_type: str, read: OptionalRead[V]) -> BatchRead[V]:
    """Adapt a `get_*` service that answers None for absent ids to per-id NOT_FOUND."""

    async def read_or_not_found(
        uow: UnitOfWork, principal: Principal, ids: list[UUID]
    ) -> list[V | DomainError]:
        found = await read(uow, principal, ids)
        return [
            item if item is not None else NotFound(resource_type, key)
            for key, item in zip(ids, found, strict=True)
        ]

    return read_or_not_found


_read_organizations = _absent_as_not_found("Organization", organizations.get_organizations)
_read_programs = _absent_as_not_found("PeerProgram", programs.get_programs)
_read_locations = _absent_as_not_found("Location", locations.get_locations)
_read_supporters = _absent_as_not_found("PeerSupporter", supporters.get_supporters)
_read_sessions = _absent_as_not_found("Session", sessions.get_sessions)


async def _read_task_outputs(
    uow: UnitOfWork, principal: Principal, referral_ids: Sequence[UUID]
) -> list[tuple[UUID, ...]]:
    found = await procedures.outputs_of(uow, principal, referral_ids)
    return [found.get(referral_id, ()) for referral_id in referral_ids]


class Loaders:
    """The request's loaders, each made when first used (a request uses two or three of them)."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, principal: Principal) -> None:
        self._unit_of_work = unit_of_work
        self._principal = principal
        self._per_arguments: dict[Hashable, DataLoader[UUID, Any]] = {}

    @classmethod
    def for_request(cls, unit_of_work: UnitOfWorkFactory, principal: Principal) -> Loaders:
        return cls(unit_of_work, principal)

    def _of(self, read: BatchRead[V]) -> DataLoader[UUID, V]:
        return _loader(self._unit_of_work, self._principal, read)

    @cached_property
    def organizations(self) -> DataLoader[UUID, Organization]:
        return self._of(_read_organizations)

    @cached_property
    def programs(self) -> DataLoader[UUID, PeerProgram]:
        return self._of(_read_programs)

    @cached_property
    def locations(self) -> DataLoader[UUID, Location]:
        return self._of(_read_locations)

    @cached_property
    def supporters(self) -> DataLoader[UUID, PeerSupporter]:
        return self._of(_read_supporters)

    @cached_property
    def patients(self) -> DataLoader[UUID, Patient]:
        return self._of(patients.get_patients)

    @cached_property
    def consents(self) -> DataLoader[UUID, Consent]:
        return self._of(consents.get_consents)

    @cached_property
    def referrals(self) -> DataLoader[UUID, ReferralView]:
        return self._of(referrals.get_referrals)

    @cached_property
    def referral_histories(self) -> DataLoader[UUID, list[StatusChange]]:
        return self._of(referrals.referral_histories)

    @cached_property
    def sessions(self) -> DataLoader[UUID, PeerSession]:
        return self._of(_read_sessions)

    @cached_property
    def consents_by_patient(self) -> DataLoader[UUID, list[Consent]]:
        return self._of(consents.consents_of_patients)

    @cached_property
    def attendance_by_session(self) -> DataLoader[UUID, list[Attendance]]:
        return self._of(sessions.attendance_for_sessions)

    @cached_property
    def attendance_by_patient(self) -> DataLoader[UUID, list[Attendance]]:
        return self._of(sessions.attendance_for_patients)

    @cached_property
    def outcomes_by_patient(self) -> DataLoader[UUID, list[OutcomeMeasure]]:
        return self._of(outcomes.outcomes_for_patients)

    @cached_property
    def task_outputs(self) -> DataLoader[UUID, tuple[UUID, ...]]:
        return self._of(_read_task_outputs)

    def programs_of_organizations(self, page: PageRequest) -> DataLoader[UUID, Page[PeerProgram]]:
        async def read(uow: UnitOfWork, principal: Principal, ids: list[UUID]) -> Sequence[Any]:
            return await programs.programs_of_organizations(uow, principal, ids, page)

        return self._per(("programs_of_organizations", page), read)

    def supporters_of_organizations(
        self, page: PageRequest
    ) -> DataLoader[UUID, Page[PeerSupporter]]:
        async def read(uow: UnitOfWork, principal: Principal, ids: list[UUID]) -> Sequence[Any]:
            return await supporters.supporters_of_organizations(uow, principal, ids, page)

        return self._per(("supporters_of_organizations", page), read)

    def referrals_with(self, relations: ReferralRelations) -> DataLoader[UUID, ReferralView]:
        """Referrals read with these relations in the same statement (see `get_referrals`)."""

        async def read(uow: UnitOfWork, principal: Principal, ids: list[UUID]) -> Sequence[Any]:
            return await referrals.get_referrals(uow, principal, ids, relations)

        return self._per(("referrals_with", relations), read)

    def referrals_of_patients(
        self, where: ReferralFilter, page: PageRequest
    ) -> DataLoader[UUID, Page[ReferralView]]:
        async def read(uow: UnitOfWork, principal: Principal, ids: list[UUID]) -> Sequence[Any]:
            return await referrals.referrals_of_patients(uow, principal, ids, where, page)

        return self._per(("referrals_of_patients", where, page), read)

    def sessions_of_programs(self, limit: int) -> DataLoader[UUID, list[PeerSession]]:
        async def read(uow: UnitOfWork, principal: Principal, ids: list[UUID]) -> Sequence[Any]:
            return await sessions.sessions_of_programs(uow, principal, ids, limit)

        return self._per(("sessions_of_programs", limit), read)

    def _per(self, arguments: Hashable, read: BatchRead[Any]) -> DataLoader[UUID, Any]:
        """The request's loader for these list arguments (made on first use)."""
        loader = self._per_arguments.get(arguments)
        if loader is None:
            loader = _loader(self._unit_of_work, self._principal, read)
            self._per_arguments[arguments] = loader
        return loader


def _loader(
    unit_of_work: UnitOfWorkFactory, principal: Principal, read: BatchRead[V]
) -> DataLoader[UUID, V]:
    async def load(ids: list[UUID]) -> Sequence[V | DomainError]:
        return await read(unit_of_work(), principal, ids)

    return DataLoader(load)
