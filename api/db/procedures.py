"""Procedures (deliveries recorded against referrals) over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.sql import Where, keyset_after, keyset_order
from api.db.verbatim import verbatim_json, verbatim_of
from api.domain.errors import VersionConflict
from api.domain.procedures import Procedure, ProcedureStatus
from api.domain.referrals import Coding
from api.services.filters import ProcedureFilter
from api.services.pagination import Keyset, Order

_COLUMNS = (
    "id, referral_id, patient_id, performer_organization_id, supporter_id, status, codes, "
    "categories, performed_start, performed_end, units, part2, version, created_at, "
    "updated_at, verbatim"
)
def output_ids(referral_column: str, name: str) -> str:
    """A column `name` of another table's statement: the ids of the Procedures recorded for
    the referral `referral_column` names, oldest first (uses procedures_referral)."""
    return (
        f"ARRAY(SELECT p.id FROM procedures p WHERE p.referral_id = {referral_column} "
        f"ORDER BY p.created_at, p.id) AS {name}"
    )


_QUALIFIED = ", ".join(f"p.{c.strip()}" for c in _COLUMNS.split(","))


def _codings(values: Sequence[dict[str, str]]) -> tuple[Coding, ...]:
    return tuple(Coding(c["system"], c["code"], c.get("display")) for c in values)


def _procedure(row: asyncpg.Record) -> Procedure:
    return Procedure(
        id=row["id"],
        referral_id=row["referral_id"],
        patient_id=row["patient_id"],
        performer_organization_id=row["performer_organization_id"],
        supporter_id=row["supporter_id"],
        status=ProcedureStatus(row["status"]),
        codes=_codings(row["codes"]),
        categories=_codings(row["categories"]),
        performed_start=row["performed_start"],
        performed_end=row["performed_end"],
        units=row["units"],
        part2=row["part2"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        verbatim=verbatim_of(row["verbatim"]),
    )


def _codes(codes: Sequence[Coding]) -> list[dict[str, str]]:
    """As jsonb (the pool's codec encodes it)."""
    return [
        {"system": c.system, "code": c.code, **({"display": c.display} if c.display else {})}
        for c in codes
    ]


def _tokens(values: Sequence[str]) -> tuple[list[str], list[str]]:
    """Token search values split into `system|code` ones and bare codes."""
    return [v for v in values if "|" in v], [v for v in values if "|" not in v]


class PostgresProcedureRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, procedure: Procedure) -> Procedure:
        row = await self._db.fetchrow(
            f"INSERT INTO procedures ({_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
            f"RETURNING {_COLUMNS}",
            procedure.id,
            procedure.referral_id,
            procedure.patient_id,
            procedure.performer_organization_id,
            procedure.supporter_id,
            procedure.status.value,
            _codes(procedure.codes),
            _codes(procedure.categories),
            procedure.performed_start,
            procedure.performed_end,
            procedure.units,
            procedure.part2,
            procedure.version,
            procedure.created_at,
            procedure.updated_at,
            verbatim_json(procedure.verbatim),
        )
        return _procedure(row)

    async def update(self, procedure: Procedure) -> Procedure:
        """What a delivery records; its referral, patient, performer and Part 2 flag stay."""
        row = await self._db.fetchrow(
            "UPDATE procedures SET supporter_id = $2, status = $3, codes = $4, "
            "categories = $5, performed_start = $6, performed_end = $7, units = $8, "
            "version = $9, updated_at = $10, verbatim = $11 "
            f"WHERE id = $1 AND version = $9 - 1 RETURNING {_COLUMNS}",
            procedure.id,
            procedure.supporter_id,
            procedure.status.value,
            _codes(procedure.codes),
            _codes(procedure.categories),
            procedure.performed_start,
            procedure.performed_end,
            procedure.units,
            procedure.version,
            procedure.updated_at,
            verbatim_json(procedure.verbatim),
        )
        if row is None:
            actual = await self._db.fetchval(
                "SELECT version FROM procedures WHERE id = $1", procedure.id
            )
            raise VersionConflict("Procedure", procedure.version - 1, actual or 0)
        return _procedure(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[Procedure | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM procedures WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _procedure(row) for row in rows}
        return [found.get(i) for i in ids]

    async def ids_for_referrals(
        self, organization_id: UUID, referral_ids: Sequence[UUID]
    ) -> list[tuple[UUID, UUID]]:
        """(referral id, Procedure id), oldest first, of the referrals the organization requested
        or performs: ids only, so a Task's outputs cost no referral or Procedure rows."""
        rows = await self._db.fetch(
            "SELECT p.referral_id, p.id FROM procedures p JOIN referrals r ON r.id = p.referral_id "
            "WHERE p.referral_id = ANY($1::uuid[]) "
            "AND (r.requester_organization_id = $2 OR r.performer_organization_id = $2) "
            "ORDER BY p.created_at, p.id",
            list(referral_ids),
            organization_id,
        )
        return [(row["referral_id"], row["id"]) for row in rows]

    async def search(
        self,
        organization_id: UUID,
        where: ProcedureFilter,
        after: Keyset | None,
        limit: int,
        order: Order = Order.NEWEST_CHANGE_FIRST,
    ) -> list[Procedure]:
        """Procedures of referrals the organization requested or performs, in `order`."""
        w = Where()
        org = w.param(organization_id)
        w.add(f"(r.requester_organization_id = {org} OR r.performer_organization_id = {org})")
        if where.ids:
            w.add("p.id = ANY({}::uuid[])", list(where.ids))
        if where.referral_ids:
            w.add("p.referral_id = ANY({}::uuid[])", list(where.referral_ids))
        if where.patient_id is not None:
            w.add("p.patient_id = {}", where.patient_id)
        if where.performer_organization_id is not None:
            w.add("p.performer_organization_id = {}", where.performer_organization_id)
        if where.caseload_of is not None:
            w.add(
                "p.patient_id IN (SELECT c.patient_id FROM referrals c "
                "WHERE c.assigned_supporter_id = {})",
                where.caseload_of,
            )
        if where.statuses:
            w.add("p.status = ANY({}::text[])", sorted(s.value for s in where.statuses))
        if where.categories:
            pairs, bare = _tokens(where.categories)
            w.add(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(p.categories) c WHERE "
                "(c->>'system') || '|' || (c->>'code') = ANY({}::text[]) "
                "OR c->>'code' = ANY({}::text[]))",
                pairs,
                bare,
            )
        if where.codes:
            pairs, bare = _tokens(where.codes)
            w.add(
                "EXISTS (SELECT 1 FROM jsonb_array_elements(p.codes) c WHERE "
                "(c->>'system') || '|' || (c->>'code') = ANY({}::text[]) "
                "OR c->>'code' = ANY({}::text[]))",
                pairs,
                bare,
            )
        if where.updated_since is not None:
            w.add("p.updated_at > {}", where.updated_since)
        if where.updated_before is not None:
            w.add("p.updated_at < {}", where.updated_before)
        if where.performed_from is not None:
            w.add("COALESCE(p.performed_end, p.performed_start) >= {}", where.performed_from)
        if where.performed_before is not None:
            w.add("p.performed_start < {}", where.performed_before)
        keyset_after(w, after, order, "p.")
        rows = await self._db.fetch(
            f"SELECT {_QUALIFIED} FROM procedures p JOIN referrals r ON r.id = p.referral_id "
            f"WHERE {w.sql()} ORDER BY {keyset_order(order, 'p.')} LIMIT {w.param(limit)}",
            *w.params,
        )
        return [_procedure(row) for row in rows]
