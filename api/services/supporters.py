"""Peer supporters: staff of peer organizations, with certifications and caseloads."""

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
from api.domain.supporters import Certification, LivedExperience, PeerSupporter, SupervisorKind
from api.domain.text import texts_problems
from api.services import idempotency
from api.services.filters import SupporterFilter
from api.services.pagination import Keyset, Page, PageRequest, page_from_rows
from api.services.policy import Capability, require, require_organization, utcnow
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class UpsertPeerSupporter:
    display_name: str
    max_caseload: int
    id: UUID | None = None
    expected_version: int | None = None
    lived_experience: tuple[LivedExperience, ...] = ()
    languages: tuple[str, ...] = ("en",)
    certifications: tuple[Certification, ...] = ()
    supervisor_name: str | None = None
    supervisor_kind: SupervisorKind | None = None
    active: bool = True


def _check(command: UpsertPeerSupporter) -> None:
    problems = []
    if not command.display_name.strip():
        problems.append(InvalidDetail("displayName", "must not be empty"))
    if not 0 <= command.max_caseload <= 500:
        problems.append(InvalidDetail("maxCaseload", "must be between 0 and 500"))
    for index, cert in enumerate(command.certifications):
        if cert.expires_on is not None and cert.expires_on < cert.issued_on:
            problems.append(
                InvalidDetail(f"certifications[{index}].expiresOn", "must not precede issuedOn")
            )
    if (command.supervisor_name is None) != (command.supervisor_kind is None):
        problems.append(InvalidDetail("supervisorKind", "give the supervisor's name and kind"))
    if command.id is not None and command.expected_version is None:
        problems.append(InvalidDetail("expectedVersion", "is required to update a supporter"))
    problems += texts_problems(
        [
            ("displayName", command.display_name, text.NAME),
            ("supervisorName", command.supervisor_name, text.NAME),
            *((f"languages[{i}]", tag, text.LANGUAGE) for i, tag in enumerate(command.languages)),
            *(
                (f"certifications[{index}].{name}", value, text.SHORT)
                for index, cert in enumerate(command.certifications)
                for name, value in (
                    ("type", cert.type),
                    ("issuingBody", cert.issuing_body),
                    ("jurisdiction", cert.jurisdiction),
                    ("number", cert.number),
                )
            ),
        ]
    )
    if problems:
        raise Invalid(problems)


async def upsert_supporter(
    uow: UnitOfWork,
    principal: Principal,
    command: UpsertPeerSupporter,
    *,
    idempotency_key: str | None = None,
) -> PeerSupporter:
    """Create or update a peer supporter of the caller's own peer organization."""
    require(principal, Capability.MANAGE_SUPPORTERS)
    _check(command)
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "upsertPeerSupporter",
            command,
            load=uow.supporters.get_many,
            resource_type="PeerSupporter",
            write=lambda: _save(uow, principal, command),
        )
        await uow.commit()
    return written


async def _save(
    uow: UnitOfWork, principal: Principal, command: UpsertPeerSupporter
) -> PeerSupporter:
    (organization,) = await uow.organizations.get_many([principal.organization_id])
    if organization is None or organization.kind is not OrganizationKind.PEER_ORGANIZATION:
        raise Forbidden("only peer organizations employ peer supporters")
    now = utcnow()
    if command.id is None:
        supporter_id, version, created_at = uuid.uuid4(), 1, now
    else:
        (existing,) = await uow.supporters.get_many([command.id])
        if existing is None:
            raise NotFound("PeerSupporter", command.id)
        require_organization(principal, existing.organization_id, "this peer supporter")
        supporter_id, created_at = existing.id, existing.created_at
        version = (command.expected_version or 0) + 1
    saved = await uow.supporters.save(
        PeerSupporter(
            id=supporter_id,
            organization_id=principal.organization_id,
            display_name=command.display_name.strip(),
            lived_experience=command.lived_experience,
            languages=command.languages,
            certifications=command.certifications,
            supervisor_name=command.supervisor_name,
            supervisor_kind=command.supervisor_kind,
            max_caseload=command.max_caseload,
            active=command.active,
            version=version,
            created_at=created_at,
            updated_at=now,
        )
    )
    uow.collect(changed("PeerSupporter", saved.id, saved.organization_id, saved.version))
    return saved


async def get_supporters(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[PeerSupporter | None]:
    require(principal, Capability.READ_SUPPORTERS)
    async with uow:
        return await uow.supporters.get_many(ids)


async def list_supporters(
    uow: UnitOfWork, principal: Principal, where: SupporterFilter, page: PageRequest
) -> Page[PeerSupporter]:
    require(principal, Capability.READ_SUPPORTERS)
    async with uow:
        rows = await uow.supporters.search(where, page.after, page.first + 1)
    return page_from_rows(rows, page, _keyset)


async def supporters_of_organizations(
    uow: UnitOfWork, principal: Principal, organization_ids: Sequence[UUID], page: PageRequest
) -> list[Page[PeerSupporter]]:
    """`list_supporters` for many organizations at once: one page per organization, in order."""
    require(principal, Capability.READ_SUPPORTERS)
    async with uow:
        rows = await uow.supporters.for_organizations(organization_ids, page.after, page.first + 1)
    by_organization: dict[UUID, list[PeerSupporter]] = defaultdict(list)
    for supporter in rows:
        by_organization[supporter.organization_id].append(supporter)
    return [page_from_rows(by_organization[o], page, _keyset) for o in organization_ids]


def _keyset(supporter: PeerSupporter) -> Keyset:
    return Keyset(supporter.updated_at, supporter.id)


async def open_caseloads(
    uow: UnitOfWork, principal: Principal, supporter_ids: Sequence[UUID]
) -> list[int | None]:
    """Open referrals assigned to each of the caller's own supporters (None: not theirs)."""
    require(principal, Capability.READ_SUPPORTERS)
    async with uow:
        found = await uow.supporters.get_many(supporter_ids)
        return [
            await uow.supporters.open_caseload(s.id)
            if s is not None and s.organization_id == principal.organization_id
            else None
            for s in found
        ]
