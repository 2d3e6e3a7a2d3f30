"""0003_fhir stores the Procedures that completed referrals used to derive, keeping their ids
(the referral's), with the units and span of the attendance recorded for them."""

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
INSERT INTO peer_programs (id, organization_id, name, kind) VALUES
    ('00000000-0000-4000-8000-000000000020', '00000000-0000-4000-8000-000000000002', 'Circle',
     'support_group');
INSERT INTO referrals (id, direction, requester_organization_id, performer_organization_id,
                       patient_id, priority, shared_data_classes, status, updated_at) VALUES
    ('00000000-0000-4000-8000-000000000030', 'clinic_to_peer',
     '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
     '00000000-0000-4000-8000-000000000010', 'routine', '{referral,substance_use}', 'completed',
     '2026-10-20T10:00:00Z'),
    ('00000000-0000-4000-8000-000000000031', 'clinic_to_peer',
     '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
     '00000000-0000-4000-8000-000000000010', 'routine', '{referral}', 'completed',
     '2026-10-21T10:00:00Z'),
    ('00000000-0000-4000-8000-000000000032', 'clinic_to_peer',
     '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002',
     '00000000-0000-4000-8000-000000000010', 'routine', '{referral}', 'in-progress',
     '2026-10-21T10:00:00Z');
INSERT INTO peer_sessions (id, program_id, organization_id, format, delivery_mode, starts_at,
                           ends_at) VALUES
    ('00000000-0000-4000-8000-000000000040', '00000000-0000-4000-8000-000000000020',
     '00000000-0000-4000-8000-000000000002', 'group', 'in_person', '2026-10-01T14:00:00Z',
     '2026-10-01T15:00:00Z'),
    ('00000000-0000-4000-8000-000000000041', '00000000-0000-4000-8000-000000000020',
     '00000000-0000-4000-8000-000000000002', 'group', 'in_person', '2026-10-08T14:00:00Z',
     '2026-10-08T14:30:00Z');
INSERT INTO attendance (session_id, patient_id, organization_id, referral_id, status, units,
                        hcpcs_code) VALUES
    ('00000000-0000-4000-8000-000000000040', '00000000-0000-4000-8000-000000000010',
     '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000030', 'attended',
     4, 'H0038'),
    ('00000000-0000-4000-8000-000000000041', '00000000-0000-4000-8000-000000000010',
     '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000030', 'attended',
     2, 'H0038');
"""


async def test_completed_referrals_keep_their_procedure_after_the_migration(
    empty_database_url: str, tmp_path: Path
) -> None:
    for name in ("0001_core.sql", "0002_auth.sql"):
        shutil.copy(MIGRATIONS_DIR / name, tmp_path / name)
    await migrate(empty_database_url, tmp_path)
    connection = await asyncpg.connect(empty_database_url)
    try:
        await connection.execute(_SEED)
        shutil.copy(MIGRATIONS_DIR / "0003_fhir.sql", tmp_path / "0003_fhir.sql")
        assert await migrate(empty_database_url, tmp_path) == ["0003_fhir"]
        rows = await connection.fetch(
            "SELECT id::text, referral_id::text, status, units, part2, performed_start, "
            "performed_end, codes::text FROM procedures ORDER BY id"
        )
    finally:
        await connection.close()
    assert [(r["id"][-2:], r["referral_id"][-2:], r["status"]) for r in rows] == [
        ("30", "30", "completed"),
        ("31", "31", "completed"),
    ]
    worked, idle = rows
    assert (worked["units"], worked["part2"]) == (6, True)
    assert worked["performed_start"].isoformat() == "2026-10-01T14:00:00+00:00"
    assert worked["performed_end"].isoformat() == "2026-10-08T14:30:00+00:00"
    assert '"H0038"' in worked["codes"]
    assert (idle["units"], idle["part2"], idle["performed_start"]) == (0, False, None)
