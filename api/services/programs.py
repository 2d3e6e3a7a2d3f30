"""Peer programs: the directory every client reads, managed by the owning peer organization."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from api.domain import text
from api.domain.errors import Forbidden, Invalid, InvalidDetail, NotFound
from api.domain.events import changed
from api.domain.organizations import OrganizationKind
from api.domain.principal import Principal
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.domain.text import texts_problems
from api.services import idempotency
from api.services.filters import ProgramFilter
from api.services.locations import check_own_locations
from api.services.pagination import Keyset, Page, PageRequest, page_from_rows
from api.services.policy import Capability, require, require_organization, utcnow
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class UpsertPeerProgram:
    """Create a program (no id) or replace one (id + the version the caller last saw)."""

    name: str
    kind: ProgramKind
    id: UUID | None = None
    expected_version: int | None = None
    description: str = ""
    languages: tuple[str, ...] = ("en",)
    delivery_modes: tuple[DeliveryMode, ...] = (DeliveryMode.IN_PERSON,)
    eligibility: str = ""
    capacity: int | None = None
    accepting_referrals: bool = True
    substance_use_focus: bool = False
    location_ids: tuple[UUID, ...] | None = None  # where it meets; None keeps the stored ones


def _check(command: UpsertPeerProgram) -> None:
    problems = []
    if not command.name.strip():
        problems.append(InvalidDetail("name", "must not be empty"))
    if command.capacity is not None and command.capacity <= 0:
        problems.append(InvalidDetail("capacity", "must be positive"))
    if not command.delivery_modes:
        problems.append(InvalidDetail("deliveryModes", "name at least one delivery mode"))
    if command.id is not None and command.expected_version is None:
        problems.append(InvalidDetail("expectedVersion", "is required to update a program"))
    problems += texts_problems(
        [
            ("name", command.name, text.NAME),
            ("description", command.description, text.DESCRIPTION),
            ("eligibility", command.eligibility, text.DESCRIPTION),
            *((f"languages[{i}]", tag, text.LANGUAGE) for i, tag in enumerate(command.languages)),
        ]
    )
    if problems:
        raise Invalid(problems)


async def upsert_program(
    uow: UnitOfWork,
    principal: Principal,
    command: UpsertPeerProgram,
    *,
    idempotency_key: str | None = None,
) -> PeerProgram:
    """Create or update one of the caller's own programs (peer organizations only)."""
    require(principal, Capability.MANAGE_PROGRAMS)
    _check(command)
    async with uow:
        saved = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "upsertPeerProgram",
            command,
            load=uow.programs.get_many,
            resource_type="PeerProgram",
            write=lambda: _save(uow, principal, command),
        )
        await uow.commit()
    return saved


async def _save(uow: UnitOfWork, principal: Principal, command: UpsertPeerProgram) -> PeerProgram:
    (organization,) = await uow.organizations.get_many([principal.organization_id])
    if organization is None or organization.kind is not OrganizationKind.PEER_ORGANIZATION:
        raise Forbidden("only peer organizations offer peer programs")
    now = utcnow()
    location_ids = command.location_ids or ()
    if command.location_ids:
        await check_own_locations(uow, principal, command.location_ids)
    if command.id is None:
        program_id, version, created_at = uuid.uuid4(), 1, now
    else:
        (existing,) = await uow.programs.get_many([command.id])
        if existing is None:
            raise NotFound("PeerProgram", command.id)
        require_organization(principal, existing.organization_id, "this program")
        program_id, created_at = existing.id, existing.created_at
        version = (command.expected_version or 0) + 1
        if command.location_ids is None:
            location_ids = existing.location_ids
    saved = await uow.programs.save(
        PeerProgram(
            id=program_id,
            organization_id=principal.organization_id,
            name=command.name.strip(),
            kind=command.kind,
            description=command.description,
            languages=command.languages,
            delivery_modes=command.delivery_modes,
            eligibility=command.eligibility,
            capacity=command.capacity,
            accepting_referrals=command.accepting_referrals,
            substance_use_focus=command.substance_use_focus,
            version=version,
            created_at=created_at,
            updated_at=now,
            location_ids=location_ids,
        )
    )
    uow.collect(changed("PeerProgram", saved.id, saved.organization_id, saved.version))
    return saved


async def get_programs(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[PeerProgram | None]:
    require(principal, Capability.READ_PROGRAMS)
    async with uow:
        return await uow.programs.get_many(ids)


async def list_programs(
    uow: UnitOfWork, principal: Principal, where: ProgramFilter, page: PageRequest
) -> Page[PeerProgram]:
    """The program directory (not patient data: every organization may read it)."""
    require(principal, Capability.READ_PROGRAMS)
    async with uow:
        rows = await uow.programs.search(where, page.after, page.first + 1, page.order)
    return page_from_rows(rows, page, _keyset)


async def programs_of_organizations(
    uow: UnitOfWork, principal: Principal, organization_ids: Sequence[UUID], page: PageRequest
) -> list[Page[PeerProgram]]:
    """`list_programs` for many organizations at once: one page per organization, in order."""
    require(principal, Capability.READ_PROGRAMS)
    async with uow:
        rows = await uow.programs.for_organizations(organization_ids, page.after, page.first + 1)
    by_organization: dict[UUID, list[PeerProgram]] = defaultdict(list)
    for program in rows:
        by_organization[program.organization_id].append(program)
    return [page_from_rows(by_organization[o], page, _keyset) for o in organization_ids]


def _keyset(program: PeerProgram) -> Keyset:
    return Keyset(program.updated_at, program.id)
