"""Program locations: part of the directory every client reads, managed by the owning peer
organization (FHIR Location; GraphQL `PeerProgram.locations`, `upsertLocation`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from api.domain import text
from api.domain.errors import Forbidden, Invalid, InvalidDetail, NotFound
from api.domain.events import changed
from api.domain.locations import (
    ADDRESS_TYPES,
    ADDRESS_USES,
    CONTACT_SYSTEMS,
    CONTACT_USES,
    DATE_TIME,
    Address,
    Concept,
    ContactPoint,
    Location,
    LocationMode,
    LocationStatus,
    Period,
    Position,
)
from api.domain.organizations import OrganizationKind
from api.domain.principal import Principal
from api.domain.verbatim import NOTHING_KEPT, Verbatim
from api.services import idempotency
from api.services.filters import LocationFilter
from api.services.pagination import Keyset, Page, PageRequest, page_from_rows
from api.services.policy import Capability, require, require_organization, utcnow
from api.services.repositories import UnitOfWork


@dataclass(frozen=True)
class UpsertLocation:
    """Create a location (no id) or replace one (id; `expected_version` guards the write when
    given). `verbatim`: elements of the source document kept as sent; None keeps the stored
    ones (a door that does not carry them, e.g. GraphQL, leaves them as they were)."""

    name: str
    id: UUID | None = None
    expected_version: int | None = None
    description: str | None = None
    status: LocationStatus | None = None
    mode: LocationMode | None = None
    physical_type: Concept | None = None
    address: Address | None = None
    telecom: tuple[ContactPoint, ...] = ()
    position: Position | None = None
    verbatim: Verbatim | None = None


def _text(value: str | None, where: str, problems: list[InvalidDetail], limit: int) -> None:
    """What is stored is read back as given, so an empty text (which FHIR cannot carry) is
    refused rather than silently left out of the FHIR view; and no text is over its limit."""
    if value is not None and not value.strip():
        problems.append(InvalidDetail(where, "must not be empty (leave it out instead)"))
    problems += text.text_problems(where, value, limit)


def _code(
    value: str | None, codes: frozenset[str], where: str, problems: list[InvalidDetail]
) -> None:
    if value is not None and value not in codes:
        problems.append(InvalidDetail(where, f"must be one of {', '.join(sorted(codes))}"))


def _period(period: Period | None, where: str, problems: list[InvalidDetail]) -> None:
    for name, value in (
        ("start", period.start if period else None),
        ("end", period.end if period else None),
    ):
        if value is not None and not DATE_TIME.fullmatch(value):
            problems.append(InvalidDetail(f"{where}.{name}", "must be a FHIR dateTime"))


def _check_address(address: Address, problems: list[InvalidDetail]) -> None:
    _code(address.use, ADDRESS_USES, "address.use", problems)
    _code(address.type, ADDRESS_TYPES, "address.type", problems)
    for name, element in (
        ("text", "text"),
        ("city", "city"),
        ("district", "district"),
        ("state", "state"),
        ("postal_code", "postalCode"),
        ("country", "country"),
    ):
        _text(getattr(address, name), f"address.{element}", problems, text.SHORT)
    for index, line in enumerate(address.lines):
        _text(line, f"address.line[{index}]", problems, text.SHORT)
    _period(address.period, "address.period", problems)


def _check_telecom(telecom: tuple[ContactPoint, ...], problems: list[InvalidDetail]) -> None:
    for index, point in enumerate(telecom):
        where = f"telecom[{index}]"
        _code(point.system, CONTACT_SYSTEMS, f"{where}.system", problems)
        _code(point.use, CONTACT_USES, f"{where}.use", problems)
        _text(point.value, f"{where}.value", problems, text.URI)
        if point.rank is not None and point.rank < 1:
            problems.append(InvalidDetail(f"{where}.rank", "must be a positive integer"))
        if point.value is not None and point.system is None:
            problems.append(InvalidDetail(f"{where}.system", "a value needs its system"))
        _period(point.period, f"{where}.period", problems)


def _check(command: UpsertLocation) -> None:
    problems: list[InvalidDetail] = []
    if not command.name.strip():
        problems.append(InvalidDetail("name", "a location needs a name"))
    problems += text.text_problems("name", command.name, text.NAME)
    _text(command.description, "description", problems, text.DESCRIPTION)
    if command.address is not None:
        _check_address(command.address, problems)
    _check_telecom(command.telecom, problems)
    kind = command.physical_type
    if kind is not None:
        _text(kind.text, "physicalType.text", problems, text.REASON)
        for index, coding in enumerate(kind.codings):
            where = f"physicalType.coding[{index}]"
            _text(coding.system, f"{where}.system", problems, text.URI)
            _text(coding.code, f"{where}.code", problems, text.SHORT)
            _text(coding.display, f"{where}.display", problems, text.REASON)
    position = command.position
    if position is not None and not -180 <= position.longitude <= 180:
        problems.append(InvalidDetail("position.longitude", "must be between -180 and 180"))
    if position is not None and not -90 <= position.latitude <= 90:
        problems.append(InvalidDetail("position.latitude", "must be between -90 and 90"))
    if problems:
        raise Invalid(problems)


async def upsert_location(
    uow: UnitOfWork,
    principal: Principal,
    command: UpsertLocation,
    *,
    idempotency_key: str | None = None,
) -> Location:
    """Create or update one of the caller's own locations (peer organizations only)."""
    require(principal, Capability.MANAGE_LOCATIONS)
    _check(command)
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "upsertLocation",
            command,
            load=uow.locations.get_many,
            resource_type="Location",
            write=lambda: _save(uow, principal, command),
        )
        await uow.commit()
    return written


async def _save(uow: UnitOfWork, principal: Principal, command: UpsertLocation) -> Location:
    (organization,) = await uow.organizations.get_many([principal.organization_id])
    if organization is None or organization.kind is not OrganizationKind.PEER_ORGANIZATION:
        raise Forbidden("only peer organizations manage program locations")
    now = utcnow()
    verbatim = command.verbatim if command.verbatim is not None else NOTHING_KEPT
    if command.id is None:
        location_id, version, created_at = uuid.uuid4(), 1, now
    else:
        (existing,) = await uow.locations.get_many([command.id])
        if existing is None:
            raise NotFound("Location", command.id)
        require_organization(principal, existing.organization_id, "this location")
        location_id, created_at = existing.id, existing.created_at
        version = (command.expected_version or existing.version) + 1
        if command.verbatim is None:
            verbatim = existing.verbatim
    saved = await uow.locations.save(
        Location(
            id=location_id,
            organization_id=principal.organization_id,
            name=command.name,
            description=command.description,
            status=command.status,
            mode=command.mode,
            physical_type=command.physical_type,
            address=command.address,
            telecom=command.telecom,
            position=command.position,
            version=version,
            created_at=created_at,
            updated_at=now,
            verbatim=verbatim,
        )
    )
    uow.collect(changed("Location", saved.id, saved.organization_id, saved.version))
    return saved


async def get_locations(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[Location | None]:
    require(principal, Capability.READ_LOCATIONS)
    async with uow:
        return await uow.locations.get_many(ids)


async def list_locations(
    uow: UnitOfWork, principal: Principal, where: LocationFilter, page: PageRequest
) -> Page[Location]:
    """The locations directory (not patient data: every organization may read it)."""
    require(principal, Capability.READ_LOCATIONS)
    async with uow:
        rows = await uow.locations.search(where, page.after, page.first + 1, page.order)
    return page_from_rows(rows, page, lambda location: Keyset(location.updated_at, location.id))


async def check_own_locations(
    uow: UnitOfWork, principal: Principal, location_ids: Sequence[UUID]
) -> None:
    """A program may meet only at its organization's own locations (inside the caller's unit
    of work, before the program is saved)."""
    problems = []
    if len(set(location_ids)) != len(location_ids):
        problems.append(InvalidDetail("locationIds", "lists a location twice"))
    found = await uow.locations.get_many(location_ids) if location_ids else []
    for index, location in enumerate(found):
        if location is None or location.organization_id != principal.organization_id:
            problems.append(
                InvalidDetail(f"locationIds[{index}]", "not a location of your organization")
            )
    if problems:
        raise Invalid(problems)
