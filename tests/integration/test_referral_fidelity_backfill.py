"""0006_referral_fidelity: referrals that existed before it keep reading as they did — the
service code of their direction, and a Task (they were all shown with one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from api.db.migrate import MIGRATIONS_DIR, migrate

_SEED = """
INSERT INTO organizations (id, name, kind) VALUES
    ('00000000-0000-4000-8000-000000000001', 'Clinic', 'clinic'),
    ('00000000-0000-4000-8000-000000000002', 'Peers', 'peer_organization');
INSERT INTO patients (id, managing_organization_id, given_name, family_name) VALUES
    ('00000000-0000-4000-8000-000000000010', '00000000-0000-4000-8000-000000000001', 'A', 'B');
INSERT INTO referrals (id, direction, requester_organization_id, performer_organization_id,
                       patient_id, priority, shared_data_classes, status, created_at) VALUES
    ('00000000-0000-4000-8000-000000000030', 'clinic_to_peer',
     '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
     '00000000-0000-4000-8000-000000000010', 'routine', '{referral}', 'requested',
     '2026-10-20T10:00:00Z'),
    ('00000000-0000-4000-8000-000000000031', 'peer_to_clinic',
     '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001',
     '00000000-0000-4000-8000-000000000010', 'urgent', '{referral}', 'accepted',
     '2026-10-21T10:00:00Z');
"""


async def test_existing_referrals_get_their_direction_code_and_their_task(
    empty_database_url: str, tmp_path: Path
) -> None:
    before = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql") if p.name < "0006")
    for name in before:
        shutil.copy(MIGRATIONS_DIR / name, tmp_path / name)
    await migrate(empty_database_url, tmp_path)
    connection = await asyncpg.connect(empty_database_url)
    try:
        await connection.execute(_SEED)
        shutil.copy(MIGRATIONS_DIR / "0006_referral_fidelity.sql", tmp_path)
        assert await migrate(empty_database_url, tmp_path) == ["0006_referral_fidelity"]
        rows = await connection.fetch(
            "SELECT code::text, categories::text, identifiers::text, "
            "task_created_at = created_at AS has_task FROM referrals ORDER BY id"
        )
        refused = await connection.fetchval(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'referrals'::regclass "
            "AND pg_get_constraintdef(oid) LIKE '%jsonb_array_length(code)%'"
        )
    finally:
        await connection.close()
    assert ['"461481000124109"' in rows[0]["code"], '"390866009"' in rows[1]["code"]] == [
        True,
        True,
    ]
    assert {(r["categories"], r["identifiers"], r["has_task"]) for r in rows} == {
        ("[]", "[]", True)
    }
    assert refused == 1  # a referral always names its service from now on
