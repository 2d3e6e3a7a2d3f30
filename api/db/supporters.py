"""Peer supporters and their certifications over asyncpg."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.sql import Where, first_per_parent
from api.domain.errors import VersionConflict
from api.domain.referrals import OPEN_STATUSES
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    PeerSupporter,
    SupervisorKind,
)
from api.services.filters import SupporterFilter
from api.services.pagination import Keyset

_COLUMNS = (
    "id, organization_id, display_name, lived_experience, languages, supervisor_name, "
    "supervisor_kind, max_caseload, active, version, created_at, updated_at"
)
_CERT_COLUMNS = (
    "supporter_id, position, type, subtype, issuing_body, jurisdiction, number, status, "
    "issued_on, expires_on, last_verified_on"
)
_OPEN = sorted(s.value for s in OPEN_STATUSES)


def _certification(row: asyncpg.Record) -> Certification:
    return Certification(
        type=row["type"],
        subtype=CertificationSubtype(row["subtype"]),
        issuing_body=row["issuing_body"],
        jurisdiction=row["jurisdiction"],
        number=row["number"],
        status=CertificationStatus(row["status"]),
        issued_on=row["issued_on"],
        expires_on=row["expires_on"],
        last_verified_on=row["last_verified_on"],
    )


def _supporter(row: asyncpg.Record, certifications: Sequence[Certification]) -> PeerSupporter:
    return PeerSupporter(
        id=row["id"],
        organization_id=row["organization_id"],
        display_name=row["display_name"],
        lived_experience=tuple(LivedExperience(e) for e in row["lived_experience"]),
        languages=tuple(row["languages"]),
        certifications=tuple(certifications),
        supervisor_name=row["supervisor_name"],
        supervisor_kind=SupervisorKind(row["supervisor_kind"]) if row["supervisor_kind"] else None,
        max_caseload=row["max_caseload"],
        active=row["active"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresSupporterRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def _hydrate(self, rows: Sequence[asyncpg.Record]) -> list[PeerSupporter]:
        certs: dict[UUID, list[Certification]] = defaultdict(list)
        if rows:
            for cert in await self._db.fetch(
                f"SELECT {_CERT_COLUMNS} FROM certifications WHERE supporter_id = ANY($1::uuid[]) "
                "ORDER BY supporter_id, position",
                [row["id"] for row in rows],
            ):
                certs[cert["supporter_id"]].append(_certification(cert))
        return [_supporter(row, certs[row["id"]]) for row in rows]

    async def save(self, supporter: PeerSupporter) -> PeerSupporter:
        values = (
            supporter.id,
            supporter.organization_id,
            supporter.display_name,
            [e.value for e in supporter.lived_experience],
            list(supporter.languages),
            supporter.supervisor_name,
            supporter.supervisor_kind.value if supporter.supervisor_kind else None,
            supporter.max_caseload,
            supporter.active,
            supporter.version,
        )
        if supporter.version == 1:
            row = await self._db.fetchrow(
                f"INSERT INTO peer_supporters ({_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) "
                f"RETURNING {_COLUMNS}",
                *values,
                supporter.updated_at,
            )
        else:
            row = await self._db.fetchrow(
                "UPDATE peer_supporters SET display_name = $3, lived_experience = $4, "
                "languages = $5, supervisor_name = $6, supervisor_kind = $7, max_caseload = $8, "
                "active = $9, version = $10, updated_at = $11 "
                "WHERE id = $1 AND organization_id = $2 AND version = $10 - 1 "
                f"RETURNING {_COLUMNS}",
                *values,
                supporter.updated_at,
            )
            if row is None:
                actual = await self._db.fetchval(
                    "SELECT version FROM peer_supporters WHERE id = $1", supporter.id
                )
                raise VersionConflict("PeerSupporter", supporter.version - 1, actual or 0)
            await self._db.execute(
                "DELETE FROM certifications WHERE supporter_id = $1", supporter.id
            )
        await self._db.executemany(
            f"INSERT INTO certifications ({_CERT_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            [
                (
                    supporter.id,
                    position,
                    c.type,
                    c.subtype.value,
                    c.issuing_body,
                    c.jurisdiction,
                    c.number,
                    c.status.value,
                    c.issued_on,
                    c.expires_on,
                    c.last_verified_on,
                )
                for position, c in enumerate(supporter.certifications)
            ],
        )
        return _supporter(row, supporter.certifications)

    async def get_many(self, ids: Sequence[UUID]) -> list[PeerSupporter | None]:
        if not ids:
            return []
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM peer_supporters WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {s.id: s for s in await self._hydrate(rows)}
        return [found.get(i) for i in ids]

    async def get_for_update(self, supporter_id: UUID) -> PeerSupporter | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM peer_supporters WHERE id = $1 FOR UPDATE", supporter_id
        )
        return (await self._hydrate([row]))[0] if row else None

    async def search(
        self, where: SupporterFilter, after: Keyset | None, limit: int
    ) -> list[PeerSupporter]:
        w = Where()
        if where.organization_id is not None:
            w.add("organization_id = {}", where.organization_id)
        if where.language is not None:
            w.add("{} = ANY(languages)", where.language)
        if where.lived_experience is not None:
            w.add("{} = ANY(lived_experience)", where.lived_experience)
        if where.active is not None:
            w.add("active = {}", where.active)
        if after is not None:
            w.add("(updated_at, id) < ({}, {})", after.updated_at, after.id)
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM peer_supporters WHERE {w.sql()} "
            f"ORDER BY updated_at DESC, id DESC LIMIT {w.param(limit)}",
            *w.params,
        )
        return await self._hydrate(rows)

    async def for_organizations(
        self, organization_ids: Sequence[UUID], after: Keyset | None, limit: int
    ) -> list[PeerSupporter]:
        w = Where()
        w.add("organization_id = ANY({}::uuid[])", list(organization_ids))
        if after is not None:
            w.add("(updated_at, id) < ({}, {})", after.updated_at, after.id)
        sql = first_per_parent(
            _COLUMNS, "peer_supporters", "organization_id", w, "updated_at DESC, id DESC", limit
        )
        return await self._hydrate(await self._db.fetch(sql, *w.params))

    async def open_caseload(self, supporter_id: UUID) -> int:
        count: int = await self._db.fetchval(
            "SELECT count(*) FROM referrals WHERE assigned_supporter_id = $1 "
            "AND status = ANY($2::text[])",
            supporter_id,
            _OPEN,
        )
        return count
