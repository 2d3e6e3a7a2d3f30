"""`peerbridge audit ...`, `peerbridge db grant-service-role` and `migrate --database-url` as an
operator runs them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from network import Network
from roles_support import service_role, url_as

from api.cli.audit import EXIT_TAMPERED
from api.cli.main import main
from api.db.audit import PostgresAuditRepository
from api.domain.audit import AuditAction, AuditOutcome, AuditRecord
from api.services import patients


def _run(argv: list[str]) -> int:
    return main(argv)


@pytest.fixture
def operator_env(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PEERBRIDGE_DATA_DIR", str(tmp_path))  # the KEK lives here
    return tmp_path


async def _disclose(network: Network) -> None:
    """The peer organization reads the patient (under the consent) and the clinic too."""
    for principal in (network.as_peer, network.as_clinic):
        await patients.get_patients(network.uow(), principal, [network.patient.id])


async def test_checkpoint_then_verify_then_a_tampered_row_makes_verify_fail(
    operator_env: Path, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    await _disclose(network)
    assert await asyncio.to_thread(_run, ["audit", "checkpoint"]) == 0
    assert "checkpoint 1:" in capsys.readouterr().out
    assert await asyncio.to_thread(_run, ["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert "audit trail verified" in out
    head = next(line.split()[1] for line in out.splitlines() if line.startswith("head "))

    async with network.pool.acquire() as conn:
        victim = await conn.fetchval("SELECT id FROM audit_events ORDER BY id LIMIT 1")
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
        await conn.execute("UPDATE audit_events SET purpose = 'audit' WHERE id = $1", victim)
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")

    assert await asyncio.to_thread(
        _run, ["audit", "verify", "--witness", head, "--witness", "9:00"]
    ) == EXIT_TAMPERED
    out = capsys.readouterr().out
    assert f"row altered: checkpoint 1, row {victim}" in out
    assert "witnessed checkpoint missing: 9:00" in out
    assert "NOT verified: 2 problem(s)" in out


async def test_export_writes_one_fhir_audit_event_per_line_for_the_window(
    operator_env: Path, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    await _disclose(network)
    out = operator_env / "trail.ndjson"
    assert await asyncio.to_thread(
        _run, ["audit", "export", "--since", before.isoformat(), "--out", str(out)]
    ) == 0
    lines = out.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert events and {e["resourceType"] for e in events} == {"AuditEvent"}
    assert [e["recorded"] for e in events] == sorted(e["recorded"] for e in events)
    assert f"exported {len(events)} AuditEvents" in capsys.readouterr().err
    assert oct(out.stat().st_mode & 0o777) == "0o600"

    assert await asyncio.to_thread(
        _run, ["audit", "export", "--since", "2020-01-01", "--until", before.isoformat()]
    ) == 0
    assert capsys.readouterr().out == ""


def test_export_refuses_an_instant_without_a_time_zone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "export", "--since", "2026-11-01T10:00:00"])
    assert exited.value.code == 2
    assert "needs a time zone" in capsys.readouterr().err


async def test_accounting_as_csv_lists_date_recipient_what_purpose_and_consent(
    operator_env: Path, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    await _disclose(network)
    today = datetime.now(UTC).date()
    argv = ["audit", "accounting", "--patient", str(network.patient.id),
            "--from", today.isoformat(), "--to", (today + timedelta(days=1)).isoformat()]
    assert await asyncio.to_thread(_run, [*argv, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows == [{
        "date": today.isoformat(),
        "recipient_organization": network.peer.name,
        "recipient_organization_id": str(network.peer.id),
        "what": "Patient",
        "purpose": "CAREMGT",  # the purpose of use recorded with the read (its consent's)
        "consent": str(network.consent.id),
        "disclosures": "1",
    }]

    assert await asyncio.to_thread(_run, [*argv, "--format", "bundle"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "collection"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["AuditEvent", "Organization", "Organization"]
    assert bundle["entry"][1]["resource"]["id"] == str(network.clinic.id)  # the holder first


async def test_accounting_of_an_unknown_patient_is_a_clear_error(
    operator_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", "accounting", "--patient", str(uuid4()), "--from", "2026-01-01",
            "--to", "2026-02-01"]
    assert await asyncio.to_thread(_run, argv) == 1
    assert "(NOT_FOUND)" in capsys.readouterr().err


async def test_migrate_takes_the_owner_url_and_grants_the_service_role(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with service_role(database_url, grant=False) as role:
        # The service's own URL cannot migrate; the owner's is given separately.
        monkeypatch.setenv("DATABASE_URL", role.url)
        monkeypatch.setenv("PEERBRIDGE_SERVICE_ROLE", role.name)
        assert await asyncio.to_thread(
            _run, ["migrate", "--database-url", database_url]
        ) == 0
        tables = await _table_count(database_url)
        assert capsys.readouterr().out.splitlines() == [
            "database is up to date",
            f"granted {role.name} its rights on {tables} tables",
        ]
        conn = await asyncpg.connect(role.url)
        try:
            await PostgresAuditRepository(conn).add_many([_record()])
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("TRUNCATE audit_events")
        finally:
            await conn.close()

        monkeypatch.setenv("PEERBRIDGE_MIGRATION_DATABASE_URL", url_as(database_url, "nobody"))
        assert await asyncio.to_thread(_run, ["migrate"]) == 1
        assert "cannot connect to the database" in capsys.readouterr().err


async def test_grant_service_role_prints_each_table_and_refuses_a_superuser(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    async with service_role(database_url, grant=False) as role:
        assert await asyncio.to_thread(
            _run, ["db", "grant-service-role", "--role", role.name]
        ) == 0
    out = capsys.readouterr().out.splitlines()
    assert "audit_events: SELECT, INSERT" in out
    assert "audit_checkpoints: SELECT, INSERT" in out
    assert "schema_migrations: SELECT" in out
    assert "referrals: SELECT, INSERT, UPDATE, DELETE" in out

    assert await asyncio.to_thread(
        _run, ["db", "grant-service-role", "--role", "postgres"]
    ) == 1
    assert "superuser" in capsys.readouterr().err


def _record() -> AuditRecord:
    return AuditRecord(AuditAction.READ, AuditOutcome.SUCCESS, "readPatient", "Patient", None,
                       None, "client", uuid4(), "client")


async def _table_count(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
        ))
    finally:
        await conn.close()
