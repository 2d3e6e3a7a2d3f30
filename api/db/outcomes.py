"""Outcome measures over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.verbatim import verbatim_json, verbatim_of
from api.domain.outcomes import Instrument, OutcomeMeasure

_COLUMNS = (
    "id, patient_id, organization_id, referral_id, instrument, administered_at, item_answers, "
    "version, created_at, updated_at, verbatim"
)


def _measure(row: asyncpg.Record) -> OutcomeMeasure:
    return OutcomeMeasure(
        id=row["id"],
        patient_id=row["patient_id"],
        organization_id=row["organization_id"],
        referral_id=row["referral_id"],
        instrument=Instrument(row["instrument"]),
        administered_at=row["administered_at"],
        item_answers=tuple(row["item_answers"]),
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        verbatim=verbatim_of(row["verbatim"]),
    )


class PostgresOutcomeRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, measure: OutcomeMeasure) -> OutcomeMeasure:
        row = await self._db.fetchrow(
            f"INSERT INTO outcome_measures ({_COLUMNS}, total, safety_signal) VALUES "
            f"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_COLUMNS}",
            measure.id,
            measure.patient_id,
            measure.organization_id,
            measure.referral_id,
            measure.instrument.value,
            measure.administered_at,
            list(measure.item_answers),
            measure.version,
            measure.created_at,
            measure.updated_at,
            verbatim_json(measure.verbatim),
            measure.total,
            measure.safety_signal,
        )
        return _measure(row)

    async def for_patients(self, patient_ids: Sequence[UUID]) -> list[OutcomeMeasure]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM outcome_measures WHERE patient_id = ANY($1::uuid[]) "
            "ORDER BY administered_at, id",
            list(patient_ids),
        )
        return [_measure(row) for row in rows]

    async def get_many(self, ids: Sequence[UUID]) -> list[OutcomeMeasure | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM outcome_measures WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _measure(row) for row in rows}
        return [found.get(i) for i in ids]
