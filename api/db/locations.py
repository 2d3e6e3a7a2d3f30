"""Program locations over asyncpg (address, telecom and physical type as JSON columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any
from uuid import UUID

import asyncpg

from api.db.sql import Where, keyset_after, keyset_order
from api.domain.errors import VersionConflict
from api.domain.locations import (
    Address,
    Concept,
    ContactPoint,
    Location,
    LocationMode,
    LocationStatus,
    Period,
    Position,
)
from api.domain.referrals import Coding
from api.services.filters import LocationFilter
from api.services.pagination import Keyset, Order

_COLUMNS = (
    "id, organization_id, name, description, status, mode, physical_type, address, telecom, "
    "position, verbatim, version, created_at, updated_at"
)


def _period(value: Mapping[str, Any] | None) -> Period | None:
    return Period(value.get("start"), value.get("end")) if value else None


def _address(value: Mapping[str, Any] | None) -> Address | None:
    if value is None:
        return None
    return Address(
        **{k: v for k, v in value.items() if k not in ("lines", "period")},
        lines=tuple(value.get("lines", ())),
        period=_period(value.get("period")),
    )


def _contact(value: Mapping[str, Any]) -> ContactPoint:
    return ContactPoint(
        **{k: v for k, v in value.items() if k != "period"}, period=_period(value.get("period"))
    )


def _concept(value: Mapping[str, Any] | None) -> Concept | None:
    if value is None:
        return None
    return Concept(tuple(Coding(**c) for c in value.get("codings", ())), value.get("text"))


def _location(row: asyncpg.Record) -> Location:
    position = Position(**row["position"]) if row["position"] else None
    return Location(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        description=row["description"],
        status=LocationStatus(row["status"]) if row["status"] else None,
        mode=LocationMode(row["mode"]) if row["mode"] else None,
        physical_type=_concept(row["physical_type"]),
        address=_address(row["address"]),
        telecom=tuple(_contact(c) for c in row["telecom"]),
        position=position,
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        verbatim=row["verbatim"],
    )


def _values(location: Location) -> tuple[Any, ...]:
    return (
        location.id,
        location.organization_id,
        location.name,
        location.description,
        location.status.value if location.status else None,
        location.mode.value if location.mode else None,
        asdict(location.physical_type) if location.physical_type else None,
        asdict(location.address) if location.address else None,
        [asdict(c) for c in location.telecom],
        asdict(location.position) if location.position else None,
        dict(location.verbatim),
        location.version,
        location.created_at,
        location.updated_at,
    )


class PostgresLocationRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def save(self, location: Location) -> Location:
        values = _values(location)
        if location.version == 1:
            row = await self._db.fetchrow(
                f"INSERT INTO locations ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                f"$9, $10, $11, $12, $13, $14) RETURNING {_COLUMNS}",
                *values,
            )
            return _location(row)
        row = await self._db.fetchrow(
            "UPDATE locations SET name = $3, description = $4, status = $5, mode = $6, "
            "physical_type = $7, address = $8, telecom = $9, position = $10, verbatim = $11, "
            "version = $12, updated_at = $13 "
            "WHERE id = $1 AND organization_id = $2 AND version = $12 - 1 "
            f"RETURNING {_COLUMNS}",
            *values[:12],
            location.updated_at,
        )
        if row is None:
            actual = await self._db.fetchval(
                "SELECT version FROM locations WHERE id = $1", location.id
            )
            raise VersionConflict("Location", location.version - 1, actual or 0)
        return _location(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[Location | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM locations WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _location(row) for row in rows}
        return [found.get(i) for i in ids]

    async def search(
        self,
        where: LocationFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[Location]:
        w = Where()
        if where.ids:
            w.add("id = ANY({}::uuid[])", sorted(where.ids))
        if where.organization_id is not None:
            w.add("organization_id = {}", where.organization_id)
        if where.name is not None and where.name_exact:
            w.add("name = {}", where.name)
        elif where.name is not None:
            w.add("lower(name) LIKE {} || '%'", _like(where.name.lower()))
        if where.city is not None:
            w.add("lower(address ->> 'city') = {}", where.city.lower())
        if where.state is not None:
            w.add("lower(address ->> 'state') = {}", where.state.lower())
        if where.postal_code is not None:
            w.add("address ->> 'postal_code' LIKE {} || '%'", _like(where.postal_code))
        if where.statuses:
            w.add("status = ANY({}::text[])", sorted(s.value for s in where.statuses))
        if where.updated_since is not None:
            w.add("updated_at > {}", where.updated_since)
        if where.updated_before is not None:
            w.add("updated_at < {}", where.updated_before)
        keyset_after(w, after, order)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM locations WHERE {w.sql()} "
            f"ORDER BY {keyset_order(order)} LIMIT {w.param(limit)}",
            *w.params,
        )
        return [_location(row) for row in rows]


def _like(text: str) -> str:
    """A LIKE pattern matching `text` literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
