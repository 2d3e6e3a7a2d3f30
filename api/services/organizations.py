"""Organizations: onboarding (operator) and the directory (any authenticated client)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from api.domain import text
from api.domain.errors import Conflict, Invalid
from api.domain.organizations import Organization, OrganizationKind
from api.domain.principal import Principal
from api.domain.text import check_texts
from api.services.policy import Capability, require
from api.services.repositories import UnitOfWork


async def create_organization(
    uow: UnitOfWork, *, name: str, kind: OrganizationKind | str, npi: str | None = None
) -> Organization:
    """Onboard a tenant (platform operator, from the CLI)."""
    name = name.strip()
    if not name:
        raise Invalid("must not be empty", field="name")
    check_texts([("name", name, text.NAME)])
    try:
        kind = OrganizationKind(kind)
    except ValueError as error:
        raise Invalid("must be clinic or peer_organization", field="kind") from error
    if npi is not None and not (len(npi) == 10 and npi.isdigit()):
        raise Invalid("an NPI has 10 digits", field="npi")
    async with uow:
        if await uow.organizations.find_by_name(name) is not None:
            raise Conflict("an organization with this name already exists")
        organization = await uow.organizations.add(name, kind, npi)
        await uow.commit()
    return organization


async def list_organizations(
    uow: UnitOfWork,
    principal: Principal | None = None,
    *,
    after_name: str | None = None,
    limit: int = 100,
) -> list[Organization]:
    """The directory of organizations, by name (principal None = platform operator)."""
    if principal is not None:
        require(principal, Capability.READ_ORGANIZATIONS)
    async with uow:
        return await uow.organizations.list(after_name, limit)


async def get_organizations(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[Organization | None]:
    require(principal, Capability.READ_ORGANIZATIONS)
    async with uow:
        return await uow.organizations.get_many(ids)
