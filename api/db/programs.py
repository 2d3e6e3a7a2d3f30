"""Peer programs over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.sql import Where, first_per_parent, keyset_after, keyset_order
from api.domain.errors import VersionConflict
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.services.filters import ProgramFilter
from api.services.pagination import Keyset, Order

_NAMES = (
    "id", "organization_id", "name", "kind", "description", "languages", "delivery_modes",
    "eligibility", "capacity", "accepting_referrals", "substance_use_focus", "version",
    "created_at", "updated_at", "location_ids",
)
_COLUMNS = ", ".join(_NAMES)


def joined(prefix: str, program_column: str) -> tuple[str, str]:
    """The columns (named `prefix` + column) and the join that read the program `program_column`
    names in another table's statement; `from_joined` makes it a PeerProgram."""
    columns = ", ".join(f"{prefix}.{name} AS {prefix}{name}" for name in _NAMES)
    return columns, f"LEFT JOIN peer_programs {prefix} ON {prefix}.id = {program_column}"


def from_joined(row: asyncpg.Record, prefix: str) -> PeerProgram | None:
    return None if row[prefix + "id"] is None else _program(row, prefix)


def _program(row: asyncpg.Record, prefix: str = "") -> PeerProgram:
    return PeerProgram(
        id=row[prefix + "id"],
        organization_id=row[prefix + "organization_id"],
        name=row[prefix + "name"],
        kind=ProgramKind(row[prefix + "kind"]),
        description=row[prefix + "description"],
        languages=tuple(row[prefix + "languages"]),
        delivery_modes=tuple(DeliveryMode(m) for m in row[prefix + "delivery_modes"]),
        eligibility=row[prefix + "eligibility"],
        capacity=row[prefix + "capacity"],
        accepting_referrals=row[prefix + "accepting_referrals"],
        substance_use_focus=row[prefix + "substance_use_focus"],
        version=row[prefix + "version"],
        created_at=row[prefix + "created_at"],
        updated_at=row[prefix + "updated_at"],
        location_ids=tuple(row[prefix + "location_ids"]),
    )


class PostgresProgramRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def save(self, program: PeerProgram) -> PeerProgram:
        values = (
            program.id,
            program.organization_id,
            program.name,
            program.kind.value,
            program.description,
            list(program.languages),
            [m.value for m in program.delivery_modes],
            program.eligibility,
            program.capacity,
            program.accepting_referrals,
            program.substance_use_focus,
            program.version,
            program.created_at,
            program.updated_at,
            list(program.location_ids),
        )
        if program.version == 1:
            row = await self._db.fetchrow(
                f"INSERT INTO peer_programs ({_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) "
                f"RETURNING {_COLUMNS}",
                *values,
            )
            return _program(row)
        row = await self._db.fetchrow(
            "UPDATE peer_programs SET name = $3, kind = $4, description = $5, languages = $6, "
            "delivery_modes = $7, eligibility = $8, capacity = $9, accepting_referrals = $10, "
            "substance_use_focus = $11, version = $12, updated_at = $13, location_ids = $14 "
            "WHERE id = $1 AND organization_id = $2 AND version = $12 - 1 "
            f"RETURNING {_COLUMNS}",
            *values[:12],
            program.updated_at,
            list(program.location_ids),
        )
        if row is None:
            actual = await self._db.fetchval(
                "SELECT version FROM peer_programs WHERE id = $1", program.id
            )
            raise VersionConflict("PeerProgram", program.version - 1, actual or 0)
        return _program(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[PeerProgram | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM peer_programs WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _program(row) for row in rows}
        return [found.get(i) for i in ids]

    async def search(
        self,
        where: ProgramFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[PeerProgram]:
        w = Where()
        if where.organization_id is not None:
            w.add("organization_id = {}", where.organization_id)
        if where.kinds:
            w.add("kind = ANY({}::text[])", sorted(k.value for k in where.kinds))
        if where.language is not None:
            w.add("{} = ANY(languages)", where.language)
        if where.delivery_mode is not None:
            w.add("{} = ANY(delivery_modes)", where.delivery_mode.value)
        if where.accepting_referrals is not None:
            w.add("accepting_referrals = {}", where.accepting_referrals)
        if where.updated_since is not None:
            w.add("updated_at > {}", where.updated_since)
        if where.updated_before is not None:
            w.add("updated_at < {}", where.updated_before)
        if where.location_ids:
            w.add("location_ids && {}::uuid[]", sorted(where.location_ids))
        if where.ids:
            w.add("id = ANY({}::uuid[])", sorted(where.ids))
        keyset_after(w, after, order)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM peer_programs WHERE {w.sql()} "
            f"ORDER BY {keyset_order(order)} LIMIT {w.param(limit)}",
            *w.params,
        )
        return [_program(row) for row in rows]

    async def for_organizations(
        self, organization_ids: Sequence[UUID], after: Keyset | None, limit: int
    ) -> list[PeerProgram]:
        w = Where()
        w.add("organization_id = ANY({}::uuid[])", list(organization_ids))
        if after is not None:
            w.add("(updated_at, id) < ({}, {})", after.updated_at, after.id)
        sql = first_per_parent(
            _COLUMNS, "peer_programs", "organization_id", w, "updated_at DESC, id DESC", limit
        )
        return [_program(row) for row in await self._db.fetch(sql, *w.params)]
