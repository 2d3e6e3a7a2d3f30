"""Signed consent forms (FHIR DocumentReference) over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.verbatim import verbatim_json, verbatim_of
from api.domain.documents import ConsentForm

_COLUMNS = (
    "id, patient_id, organization_id, content_type, title, url, data, version, created_at, "
    "updated_at, verbatim"
)


def _form(row: asyncpg.Record) -> ConsentForm:
    return ConsentForm(
        id=row["id"],
        patient_id=row["patient_id"],
        organization_id=row["organization_id"],
        content_type=row["content_type"],
        title=row["title"],
        url=row["url"],
        data=row["data"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        verbatim=verbatim_of(row["verbatim"]),
    )


class PostgresConsentFormRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, form: ConsentForm) -> ConsentForm:
        row = await self._db.fetchrow(
            f"INSERT INTO consent_forms ({_COLUMNS}) VALUES "
            f"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {_COLUMNS}",
            form.id,
            form.patient_id,
            form.organization_id,
            form.content_type,
            form.title,
            form.url,
            form.data,
            form.version,
            form.created_at,
            form.updated_at,
            verbatim_json(form.verbatim),
        )
        return _form(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[ConsentForm | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consent_forms WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _form(row) for row in rows}
        return [found.get(i) for i in ids]

    async def for_patients(self, patient_ids: Sequence[UUID]) -> list[ConsentForm]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consent_forms WHERE patient_id = ANY($1::uuid[]) "
            "ORDER BY updated_at DESC, id DESC",
            list(patient_ids),
        )
        return [_form(row) for row in rows]
