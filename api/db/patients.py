"""Patients and their identifiers over asyncpg."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db import joined_consents
from api.db.sql import Where
from api.db.verbatim import verbatim_json, verbatim_of
from api.domain.consents import ConsentScope, ConsentTerms
from api.domain.patients import Gender, Patient, PatientIdentifier

_NAMES = (
    "id", "managing_organization_id", "given_name", "family_name", "birth_date", "gender",
    "phone", "email", "preferred_language", "version", "created_at", "updated_at", "verbatim",
)
_COLUMNS = ", ".join(_NAMES)
# The column prefix of a patient read as a join (see `joined`).
_JOINED = "patient__"


def _patient(
    row: asyncpg.Record, identifiers: Sequence[PatientIdentifier], prefix: str = ""
) -> Patient:
    return Patient(
        id=row[prefix + "id"],
        managing_organization_id=row[prefix + "managing_organization_id"],
        identifiers=tuple(identifiers),
        given_name=row[prefix + "given_name"],
        family_name=row[prefix + "family_name"],
        birth_date=row[prefix + "birth_date"],
        gender=Gender(row[prefix + "gender"]),
        phone=row[prefix + "phone"],
        email=row[prefix + "email"],
        preferred_language=row[prefix + "preferred_language"],
        version=row[prefix + "version"],
        created_at=row[prefix + "created_at"],
        updated_at=row[prefix + "updated_at"],
        verbatim=verbatim_of(row[prefix + "verbatim"]),
    )


def joined(prefix: str, patient_column: str) -> tuple[str, str]:
    """The columns (named `prefix` + column) and the joins that read the patient
    `patient_column` names, with their identifiers in order, in one statement (of this table or
    another's); `from_joined` makes it a Patient."""
    columns = ", ".join(f"{prefix}.{name} AS {prefix}{name}" for name in _NAMES)
    identifiers = f"{prefix}identifiers"
    return (
        f"{columns}, {identifiers}.systems AS {prefix}identifier_systems, "
        f"{identifiers}.identifier_values AS {prefix}identifier_values",
        f"LEFT JOIN patients {prefix} ON {prefix}.id = {patient_column} "
        "LEFT JOIN LATERAL (SELECT array_agg(i.system ORDER BY i.ordinal) AS systems, "
        "array_agg(i.value ORDER BY i.ordinal) AS identifier_values FROM patient_identifiers i "
        f"WHERE i.patient_id = {prefix}.id) AS {identifiers} ON true",
    )


def from_joined(row: asyncpg.Record, prefix: str) -> Patient | None:
    if row[prefix + "id"] is None:
        return None
    systems = row[prefix + "identifier_systems"] or ()
    values = row[prefix + "identifier_values"] or ()
    return _patient(
        row,
        [PatientIdentifier(system, value) for system, value in zip(systems, values, strict=True)],
        prefix,
    )


class PostgresPatientRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def _hydrate(self, rows: Sequence[asyncpg.Record]) -> list[Patient]:
        identifiers: dict[UUID, list[PatientIdentifier]] = defaultdict(list)
        if rows:
            for row in await self._db.fetch(
                "SELECT patient_id, system, value FROM patient_identifiers "
                "WHERE patient_id = ANY($1::uuid[]) ORDER BY patient_id, ordinal",
                [row["id"] for row in rows],
            ):
                identifiers[row["patient_id"]].append(
                    PatientIdentifier(row["system"], row["value"])
                )
        return [_patient(row, identifiers[row["id"]]) for row in rows]

    async def add(self, patient: Patient) -> Patient:
        row = await self._db.fetchrow(
            f"INSERT INTO patients ({_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            f"RETURNING {_COLUMNS}",
            patient.id,
            patient.managing_organization_id,
            patient.given_name,
            patient.family_name,
            patient.birth_date,
            patient.gender.value,
            patient.phone,
            patient.email,
            patient.preferred_language,
            patient.version,
            patient.created_at,
            patient.updated_at,
            verbatim_json(patient.verbatim),
        )
        await self._db.executemany(
            "INSERT INTO patient_identifiers (patient_id, organization_id, ordinal, system, value) "
            "VALUES ($1, $2, $3, $4, $5)",
            [
                (patient.id, patient.managing_organization_id, n, i.system, i.value)
                for n, i in enumerate(patient.identifiers)
            ],
        )
        return _patient(row, patient.identifiers)

    async def get_many(self, ids: Sequence[UUID]) -> list[Patient | None]:
        found = await self.get_many_with_consents(ids, None)
        return [None if item is None else item[0] for item in found]

    async def get_many_with_consents(
        self, ids: Sequence[UUID], scope: ConsentScope | None
    ) -> list[tuple[Patient, tuple[ConsentTerms, ...]] | None]:
        if not ids:
            return []
        w = Where(list(ids))
        # Read as a join on the wanted ids: one statement and one row mapper for every read.
        columns, joins = joined(_JOINED, "wanted.id")
        if scope is not None:
            columns += ", " + joined_consents.COLUMNS
            joins += " " + joined_consents.join(w, "wanted.id", scope)
        rows = await self._db.fetch(
            f"SELECT {columns} FROM unnest($1::uuid[]) AS wanted(id) {joins}", *w.params
        )
        found = {}
        for row in rows:
            patient = from_joined(row, _JOINED)
            if patient is not None:
                consents = joined_consents.terms_of(row, patient.id, scope) if scope else ()
                found[patient.id] = (patient, consents)
        return [found.get(i) for i in ids]

    async def find_by_identifier(self, identifier: PatientIdentifier) -> list[Patient]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM patients WHERE id IN (SELECT patient_id FROM "
            "patient_identifiers WHERE system = $1 AND value = $2) ORDER BY created_at, id",
            identifier.system,
            identifier.value,
        )
        return await self._hydrate(rows)

    async def referral_organizations(self, patient_ids: Sequence[UUID]) -> dict[UUID, set[UUID]]:
        if not patient_ids:
            return {}
        rows = await self._db.fetch(
            "SELECT patient_id, requester_organization_id AS organization_id FROM referrals "
            "WHERE patient_id = ANY($1::uuid[]) "
            "UNION SELECT patient_id, performer_organization_id FROM referrals "
            "WHERE patient_id = ANY($1::uuid[])",
            list(patient_ids),
        )
        found: dict[UUID, set[UUID]] = defaultdict(set)
        for row in rows:
            found[row["patient_id"]].add(row["organization_id"])
        return dict(found)

    async def of_caseload(self, supporter_id: UUID, patient_ids: Sequence[UUID]) -> set[UUID]:
        if not patient_ids:
            return set()
        rows = await self._db.fetch(
            "SELECT DISTINCT patient_id FROM referrals "
            "WHERE patient_id = ANY($2::uuid[]) AND assigned_supporter_id = $1",
            supporter_id,
            list(patient_ids),
        )
        return {row["patient_id"] for row in rows}
