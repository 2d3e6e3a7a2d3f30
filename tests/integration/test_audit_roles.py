"""The production split of database roles: the service role may add to and read the audit trail
but not rewrite, empty or unprotect it; migrations need the owner, and only when pending."""

from __future__ import annotations

import shutil
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from roles_support import service_role

from api.db import outbox
from api.db.audit import PostgresAuditRepository
from api.db.migrate import MigrationNotPermitted, discover, migrate
from api.db.roles import RoleRefused, grant_service_role
from api.domain.audit import AuditAction, AuditOutcome, AuditRecord

REFUSED_TO_THE_SERVICE = [
    "TRUNCATE audit_events",
    "UPDATE audit_events SET subject = 'x'",
    "DELETE FROM audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE audit_events DROP COLUMN row_hash",
    "DROP TRIGGER audit_events_seal ON audit_events",
    "DROP TABLE audit_events",
    "TRUNCATE audit_checkpoints",
    "DELETE FROM audit_checkpoints",
    "UPDATE audit_checkpoints SET signature = ''",
    "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER",
    "CREATE OR REPLACE FUNCTION audit_row_hash(r audit_events) RETURNS bytea "
    "LANGUAGE sql AS $$ SELECT '\\x00'::bytea $$",
    "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
    "TRUNCATE outbox",
]


def _record() -> AuditRecord:
    return AuditRecord(
        action=AuditAction.READ,
        outcome=AuditOutcome.SUCCESS,
        operation="readPatient",
        resource_type="Patient",
        resource_id=None,
        patient_id=uuid4(),
        client_id="client-a",
        organization_id=uuid4(),
        subject="client-a",
    )


async def test_the_service_role_adds_to_the_trail_and_reads_it_but_cannot_rewrite_it(
    database_url: str,
) -> None:
    async with service_role(database_url) as role:
        conn = await asyncpg.connect(role.url)
        try:
            await PostgresAuditRepository(conn).add_many([_record(), _record()])
            assert await conn.fetchval("SELECT count(*) FROM audit_events") == 2
            assert await conn.fetchval("SELECT count(*) FROM audit_checkpoints") == 0
            for statement in REFUSED_TO_THE_SERVICE:
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement)
            assert await conn.fetchval("SELECT count(*) FROM audit_events") == 2
        finally:
            await conn.close()


async def test_the_service_role_numbers_the_outbox_it_writes(database_url: str) -> None:
    # The sequencer draws positions with nextval: a sequence needs its own grant.
    async with service_role(database_url) as role:
        conn = await asyncpg.connect(role.url)
        try:
            await conn.execute(
                "INSERT INTO outbox (event_type, aggregate_type, aggregate_id, organization_ids) "
                "VALUES ('ReferralCreated', 'Referral', $1, $2)", uuid4(), [uuid4()]
            )
            assert await outbox.sequence(conn) >= 1
        finally:
            await conn.close()


async def test_granting_again_after_a_broader_grant_takes_the_extra_rights_back(
    database_url: str,
) -> None:
    async with service_role(database_url) as role:
        owner = await asyncpg.connect(database_url)
        try:
            await owner.execute(f"GRANT ALL ON audit_events TO {role.name}")
            await grant_service_role(owner, role.name)
            privileges = await owner.fetchval(
                "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) "
                "FROM information_schema.role_table_grants "
                "WHERE grantee = $1 AND table_name = 'audit_events'",
                role.name,
            )
        finally:
            await owner.close()
    assert privileges == "INSERT,SELECT"


async def test_grant_refuses_roles_that_could_undo_it(database_url: str) -> None:
    owner = await asyncpg.connect(database_url)
    try:
        with pytest.raises(RoleRefused, match="superuser"):
            await grant_service_role(owner, "postgres")
        with pytest.raises(RoleRefused, match="does not exist"):
            await grant_service_role(owner, "pb_no_such_role")
        current = await owner.fetchval("SELECT current_user")
        async with service_role(database_url, grant=False) as role:
            await owner.execute(f'GRANT "{current}" TO {role.name}')
            with pytest.raises(RoleRefused, match="member of\\) the role that owns"):
                await grant_service_role(owner, role.name)
    finally:
        await owner.close()


async def test_the_service_role_starts_when_nothing_is_pending_and_says_what_to_run_otherwise(
    database_url: str, tmp_path: Path
) -> None:
    async with service_role(database_url) as role:
        assert await migrate(role.url) == []

        for migration in discover():
            shutil.copy(migration.path, tmp_path / migration.path.name)
        (tmp_path / "9998_more.sql").write_text("CREATE TABLE more (id integer);\n")
        with pytest.raises(MigrationNotPermitted, match="PEERBRIDGE_MIGRATION_DATABASE_URL"):
            await migrate(role.url, tmp_path)
