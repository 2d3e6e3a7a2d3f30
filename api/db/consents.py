"""Consents over asyncpg."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.verbatim import verbatim_json, verbatim_of
from api.domain.consents import Consent, DataClass, Purpose
from api.domain.errors import VersionConflict

_COLUMNS = (
    "id, patient_id, recorded_by_organization_id, recipient_organization_id, purposes, "
    "data_classes, period_start, period_end, revoked, revoked_at, revocation_reason, "
    "source_reference, version, created_at, updated_at, verbatim"
)


def _consent(row: asyncpg.Record) -> Consent:
    return Consent(
        id=row["id"],
        patient_id=row["patient_id"],
        recorded_by_organization_id=row["recorded_by_organization_id"],
        recipient_organization_id=row["recipient_organization_id"],
        purposes=frozenset(Purpose(p) for p in row["purposes"]),
        data_classes=frozenset(DataClass(c) for c in row["data_classes"]),
        period_start=row["period_start"],
        period_end=row["period_end"],
        revoked=row["revoked"],
        revoked_at=row["revoked_at"],
        revocation_reason=row["revocation_reason"],
        source_reference=row["source_reference"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        verbatim=verbatim_of(row["verbatim"]),
    )


def _values(consent: Consent) -> tuple[object, ...]:
    return (
        consent.id,
        consent.patient_id,
        consent.recorded_by_organization_id,
        consent.recipient_organization_id,
        sorted(p.value for p in consent.purposes),
        sorted(c.value for c in consent.data_classes),
        consent.period_start,
        consent.period_end,
        consent.revoked,
        consent.revoked_at,
        consent.revocation_reason,
        consent.source_reference,
        consent.version,
        consent.created_at,
        consent.updated_at,
    )


class PostgresConsentRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, consent: Consent) -> Consent:
        row = await self._db.fetchrow(
            f"INSERT INTO consents ({_COLUMNS}) VALUES "
            "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) "
            f"RETURNING {_COLUMNS}",
            *_values(consent),
            verbatim_json(consent.verbatim),
        )
        return _consent(row)

    async def save(self, consent: Consent) -> Consent:
        row = await self._db.fetchrow(
            "UPDATE consents SET purposes = $5, data_classes = $6, period_start = $7, "
            "period_end = $8, revoked = $9, revoked_at = $10, revocation_reason = $11, "
            "source_reference = $12, version = $13, updated_at = $15 "
            "WHERE id = $1 AND patient_id = $2 AND recorded_by_organization_id = $3 "
            "AND recipient_organization_id = $4 AND version = $13 - 1 "
            "AND created_at = $14 "
            f"RETURNING {_COLUMNS}",
            *_values(consent),  # what the source document said stays as it was sent
        )
        if row is None:
            actual = await self._db.fetchval(
                "SELECT version FROM consents WHERE id = $1", consent.id
            )
            raise VersionConflict("Consent", consent.version - 1, actual or 0)
        return _consent(row)

    async def get_many(self, ids: Sequence[UUID]) -> list[Consent | None]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consents WHERE id = ANY($1::uuid[])", list(ids)
        )
        found = {row["id"]: _consent(row) for row in rows}
        return [found.get(i) for i in ids]

    async def for_patients(self, patient_ids: Sequence[UUID]) -> list[Consent]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consents WHERE patient_id = ANY($1::uuid[]) "
            "ORDER BY created_at, id",
            list(patient_ids),
        )
        return [_consent(row) for row in rows]

    async def get_for_update(self, consent_id: UUID) -> Consent | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM consents WHERE id = $1 FOR UPDATE", consent_id
        )
        return _consent(row) if row else None

    async def hold_for_patient(self, patient_id: UUID) -> None:
        # Id order: concurrent holders and bulk revocations take the row locks in one order.
        await self._db.execute(
            "SELECT id FROM consents WHERE patient_id = $1 ORDER BY id FOR SHARE", patient_id
        )

    async def serialise_sharing(self, patient_id: UUID, recipient_organization_id: UUID) -> None:
        # Row locks cannot stop a concurrent insert of a duplicate: a lock on the pair can.
        await self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"consent-sharing:{patient_id}:{recipient_organization_id}",
        )

    async def sharing_for_update(
        self, patient_id: UUID, recipient_organization_id: UUID
    ) -> list[Consent]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM consents "
            "WHERE patient_id = $1 AND recipient_organization_id = $2 ORDER BY id FOR UPDATE",
            patient_id,
            recipient_organization_id,
        )
        return [_consent(row) for row in rows]
