"""`peerbridge orgs create|list`: onboard tenant organizations (platform operator)."""

from __future__ import annotations

import argparse
import json

import asyncpg

from api.cli.common import run_with_pool
from api.db.uow import PostgresUnitOfWork
from api.domain.organizations import Organization, OrganizationKind
from api.services.organizations import create_organization, list_organizations

_PAGE = 200


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "orgs",
        help="create and list organizations (tenants)",
        description="Organizations are the tenants: clinics and peer-support organizations.",
    )
    commands = parser.add_subparsers(dest="orgs_command", metavar="COMMAND", required=True)

    create = commands.add_parser(
        "create", help="onboard an organization", description="Onboard an organization."
    )
    create.add_argument("--name", required=True, help="display name, unique (case-insensitive)")
    create.add_argument("--kind", required=True, choices=[kind.value for kind in OrganizationKind])
    create.add_argument("--npi", help="10-digit National Provider Identifier")
    create.set_defaults(handler=_create)

    listing = commands.add_parser(
        "list", help="list organizations by name", description="List organizations by name."
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object per line")
    listing.set_defaults(handler=_list)


def _create(args: argparse.Namespace) -> int:
    async def create(pool: asyncpg.Pool) -> Organization:
        return await create_organization(
            PostgresUnitOfWork(pool), name=args.name, kind=args.kind, npi=args.npi
        )

    organization = run_with_pool(create)
    print(f"created {organization.kind.value} {organization.name!r} with id {organization.id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    organizations = run_with_pool(_all_organizations)
    if args.json:
        for organization in organizations:
            print(json.dumps(_as_json(organization)))
    elif not organizations:
        print("no organizations yet: add one with `peerbridge orgs create`")
    else:
        for org in organizations:
            print(f"{org.id}  {org.kind.value:<17}  {org.npi or '-':<10}  {org.name}")
    return 0


async def _all_organizations(pool: asyncpg.Pool) -> list[Organization]:
    uow = PostgresUnitOfWork(pool)
    everything: list[Organization] = []
    while True:
        after = everything[-1].name if everything else None
        page = await list_organizations(uow, after_name=after, limit=_PAGE)
        everything.extend(page)
        if len(page) < _PAGE:
            return everything


def _as_json(organization: Organization) -> dict[str, object]:
    return {
        "id": str(organization.id),
        "name": organization.name,
        "kind": organization.kind.value,
        "npi": organization.npi,
        "active": organization.active,
        "created_at": organization.created_at.isoformat(),
    }
