"""Console accounts of the demo network: one per role per demo organization, all with the one
demo password (printed in the demo's log). Idempotent: existing accounts are left as they are."""

from __future__ import annotations

import re
from collections.abc import Mapping

import asyncpg

from api.db.uow import PostgresUnitOfWork
from api.domain.organizations import Organization, OrganizationKind
from api.domain.principal import Principal
from api.domain.staff import StaffRole, StaffUser
from api.domain.supporters import PeerSupporter
from api.services import supporters, users
from api.services.filters import SupporterFilter
from api.services.pagination import PageRequest
from api.services.policy import utcnow

# Fictional and public on purpose: the demo network holds no real person.
DEMO_PASSWORD = "peerbridge-demo-console"
_PEER_ROLES = (StaffRole.COORDINATOR, StaffRole.SUPPORTER, StaffRole.SUPERVISOR)


def demo_email(role: StaffRole, organization_name: str) -> str:
    """`coordinator@harbor-peer-recovery-network.example` (RFC 2606 reserves .example)."""
    name = organization_name.removesuffix("(demo)").lower()
    return f"{role.value}@{re.sub(r'[^a-z0-9]+', '-', name).strip('-')}.example"


async def ensure_demo_users(
    pool: asyncpg.Pool, organizations: Mapping[str, Organization], loader: Principal
) -> list[StaffUser]:
    """Every demo account, created when missing (`loader` reads each organization's
    supporters: a supporter's account works as its first certified peer supporter)."""
    existing = {u.email: u for u in await users.list_users(PostgresUnitOfWork(pool))}
    accounts = []
    for name, org in organizations.items():
        roles = (StaffRole.CLINIC,) if org.kind is OrganizationKind.CLINIC else _PEER_ROLES
        for role in roles:
            email = demo_email(role, name)
            account = existing.get(email)
            if account is None:
                supporter = (
                    await _certified_supporter(pool, loader, org)
                    if (role is StaffRole.SUPPORTER)
                    else None
                )
                account = await users.create_user(
                    PostgresUnitOfWork(pool),
                    users.CreateStaffUser(
                        organization_id=org.id,
                        email=email,
                        role=role,
                        password=DEMO_PASSWORD,
                        supporter_id=supporter.id if supporter else None,
                    ),
                )
            accounts.append(account)
    return accounts


async def _certified_supporter(
    pool: asyncpg.Pool, loader: Principal, org: Organization
) -> PeerSupporter:
    page = await supporters.list_supporters(
        PostgresUnitOfWork(pool),
        loader,
        SupporterFilter(organization_id=org.id),
        PageRequest(first=100),
    )
    today = utcnow().date()
    certified = sorted(
        (s for s in page.items if s.has_valid_certification(today)),
        key=lambda s: s.display_name,
    )
    return certified[0]


def describe_demo_users(accounts: list[StaffUser], base_url: str) -> str:
    lines = [f"console: {base_url}/console/login, every demo account's password: {DEMO_PASSWORD}"]
    lines += [f"  {a.role.value:<11} {a.email}" for a in accounts]
    return "\n".join(lines)
