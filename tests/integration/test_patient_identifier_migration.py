"""0007 makes patient identifiers unique per managing organization (several values of one
system allowed), filling the organization and the order of the identifiers already stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from api.db.migrate import MIGRATIONS_DIR, migrate

CLINIC = "00000000-0000-4000-8000-000000000001"
OTHER = "00000000-0000-4000-8000-000000000002"
PATIENT = "00000000-0000-4000-8000-000000000010"
SECOND = "00000000-0000-4000-8000-000000000011"

_SEED = f"""
INSERT INTO organizations (id, name, kind) VALUES
    ('{CLINIC}', 'Clinic', 'clinic'), ('{OTHER}', 'Other clinic', 'clinic');
INSERT INTO patients (id, managing_organization_id, given_name, family_name) VALUES
    ('{PATIENT}', '{CLINIC}', 'A', 'B'), ('{SECOND}', '{CLINIC}', 'C', 'D');
INSERT INTO patient_identifiers (patient_id, system, value) VALUES
    ('{PATIENT}', 'urn:b', '1'), ('{PATIENT}', 'urn:a', '2'), ('{SECOND}', 'urn:a', '3');
"""


async def test_identifiers_become_unique_per_organization_with_their_order_kept(
    empty_database_url: str, tmp_path: Path
) -> None:
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0007":
            shutil.copy(path, tmp_path / path.name)
    await migrate(empty_database_url, tmp_path)
    connection = await asyncpg.connect(empty_database_url)
    try:
        await connection.execute(_SEED)
        await migrate(connection)
        rows = await connection.fetch(
            "SELECT patient_id::text, organization_id::text, ordinal, system, value "
            "FROM patient_identifiers ORDER BY patient_id, ordinal"
        )
        assert [tuple(row) for row in rows] == [
            (PATIENT, CLINIC, 0, "urn:a", "2"),
            (PATIENT, CLINIC, 1, "urn:b", "1"),
            (SECOND, CLINIC, 0, "urn:a", "3"),
        ]
        insert = (
            "INSERT INTO patient_identifiers (patient_id, organization_id, ordinal, system, value)"
            " VALUES ($1, $2, $3, $4, $5)"
        )
        await connection.execute(insert, PATIENT, CLINIC, 2, "urn:b", "9")  # a second value
        await connection.execute(
            "INSERT INTO patients (id, managing_organization_id, given_name, family_name) "
            f"VALUES ('00000000-0000-4000-8000-000000000012', '{OTHER}', 'E', 'F')"
        )
        other_patient = "00000000-0000-4000-8000-000000000012"
        await connection.execute(insert, other_patient, OTHER, 0, "urn:a", "2")  # other holder
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(insert, SECOND, CLINIC, 1, "urn:a", "2")
        with pytest.raises(asyncpg.ForeignKeyViolationError):  # not the patient's holder
            await connection.execute(insert, SECOND, OTHER, 1, "urn:c", "1")
    finally:
        await connection.close()
