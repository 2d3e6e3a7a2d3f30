"""Organizations over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.domain.organizations import Organization, OrganizationKind

_COLUMNS = "id, name, kind, npi, active, version, created_at, updated_at"


def _organization(row: asyncpg.Record) -> Organization:
    return Organization(
        id=row["id"],
        name=row["name"],
        kind=OrganizationKind(row["kind"]),
        npi=row["npi"],
        active=row["active"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresOrganizationRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, name: str, kind: OrganizationKind, npi: str | None) -> Organization:
        row = await self._db.fetchrow(
            f"INSERT INTO organizations (name, kind, npi) VALUES ($1, $2, $3) RETURNING {_COLUMNS}",
            name,
            kind.value,
            npi,
        )
        return _organization(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[Organization | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM organizations WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _organization(row) for row in rows}
        return [found.get(i) for i in ids]

    async def list(self, after_name: str | None, limit: int) -> list[Organization]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM organizations WHERE $1::text IS NULL OR name > $1 "
            "ORDER BY name LIMIT $2",
            after_name,
            limit,
        )
        return [_organization(row) for row in rows]

    async def find_by_name(self, name: str) -> Organization | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM organizations WHERE lower(name) = lower($1)", name
        )
        return _organization(row) if row else None
