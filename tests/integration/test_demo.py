"""`peerbridge demo` builds the promised network through the services, and only once."""

from __future__ import annotations

import asyncpg

from api.cli.demo import load_demo
from api.settings import Settings

COUNTS = """
SELECT (SELECT count(*) FROM organizations) AS organizations,
       (SELECT count(DISTINCT kind) FROM peer_programs) AS program_kinds,
       (SELECT count(*) FROM patients) AS patients,
       (SELECT count(*) FROM consents WHERE revoked) AS revoked_consents,
       (SELECT count(*) FROM consents WHERE 'substance_use' = ANY(data_classes)) AS part2_consents,
       (SELECT count(*) FROM referrals) AS referrals,
       (SELECT count(DISTINCT status) FROM referrals) AS statuses,
       (SELECT count(DISTINCT direction) FROM referrals) AS directions,
       (SELECT count(*) FROM certifications WHERE expires_on < current_date) AS expired_certs,
       (SELECT count(*) FROM attendance) AS attendance,
       (SELECT count(DISTINCT instrument) FROM outcome_measures) AS instruments,
       (SELECT count(*) FROM oauth_clients) AS clients,
       (SELECT count(*) FROM locations) AS locations,
       (SELECT count(*) FROM peer_programs WHERE cardinality(location_ids) > 0) AS programs_met,
       (SELECT count(*) FROM staff_users) AS staff_users,
       (SELECT string_agg(password_hash, ',' ORDER BY id) FROM staff_users) AS staff_passwords
"""


async def test_the_demo_network_has_every_kind_status_and_direction_and_loads_once(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    text = await load_demo(pool, settings)
    assert "demo network loaded" in text and "clients token" in text
    async with pool.acquire() as conn:
        first = dict(await conn.fetchrow(COUNTS))
    assert first["organizations"] == 5 and first["program_kinds"] == 4
    assert first["patients"] == 50 and first["referrals"] >= 200
    assert first["statuses"] == 8 and first["directions"] == 2
    assert first["revoked_consents"] > 0 and first["part2_consents"] > 0
    assert first["expired_certs"] > 0 and first["attendance"] > 0
    assert first["instruments"] == 2 and first["clients"] == 5
    assert first["locations"] == 6 and first["programs_met"] >= 6  # online ones meet nowhere
    assert first["staff_users"] == 2 + 3 * 3  # one per role per organization
    assert "coordinator@harbor-peer-recovery-network.example" in text
    assert "peerbridge-demo-console" in text
    again = await load_demo(pool, settings)
    assert "already loaded" in again
    async with pool.acquire() as conn:
        assert dict(await conn.fetchrow(COUNTS)) == first
