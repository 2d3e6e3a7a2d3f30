from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from serve_support import free_port, wait_ready

from api.cli.main import main
from api.db.migrate import discover
from api.settings import Settings


def _run(argv: list[str]) -> int:
    # Commands call asyncio.run(); a worker thread keeps them off the test's event loop.
    return main(argv)


async def test_orgs_create_then_list(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)

    created = await asyncio.to_thread(
        _run,
        ["orgs", "create", "--name", "Riverside Clinic", "--kind", "clinic", "--npi", "1234567893"],
    )
    assert created == 0
    assert "created clinic 'Riverside Clinic'" in capsys.readouterr().out

    assert await asyncio.to_thread(_run, ["orgs", "list", "--json"]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["name"] == "Riverside Clinic"
    assert listed["kind"] == "clinic"
    assert listed["npi"] == "1234567893"


async def test_a_duplicate_organization_is_a_clear_error(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    argv = ["orgs", "create", "--name", "Peer Circle", "--kind", "peer_organization"]
    assert await asyncio.to_thread(_run, argv) == 0

    assert await asyncio.to_thread(_run, argv) == 1
    err = capsys.readouterr().err
    assert "peerbridge: error:" in err and "(CONFLICT)" in err
    assert "Traceback" not in err


async def test_commands_refuse_a_database_with_pending_migrations(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)

    assert await asyncio.to_thread(_run, ["orgs", "list"]) == 1
    assert "run `peerbridge migrate` first" in capsys.readouterr().err

    assert await asyncio.to_thread(_run, ["migrate"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"applied {m.name}" for m in discover()]
    assert await asyncio.to_thread(_run, ["migrate"]) == 0
    assert capsys.readouterr().out.strip() == "database is up to date"


def test_an_unreachable_database_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody:s3cret@127.0.0.1:{free_port()}/x")

    assert main(["orgs", "list"]) == 1
    err = capsys.readouterr().err
    assert "cannot connect to the database" in err
    assert "s3cret" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["orgs", "create", "--name", "X", "--kind", "hospital"],
        ["orgs", "create", "--kind", "clinic"],
        ["serve", "--port", "not-a-number"],
        ["no-such-command"],
    ],
)
def test_bad_arguments_exit_2_with_a_usage_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: peerbridge" in capsys.readouterr().err


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_invalid_configuration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PEERBRIDGE_DB_POOL_MAX_SIZE", "zero")

    assert main(["migrate"]) == 1
    assert "PEERBRIDGE_DB_POOL_MAX_SIZE" in capsys.readouterr().err


def test_production_refuses_the_embedded_database(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PEERBRIDGE_ENVIRONMENT", "production")

    assert main(["migrate"]) == 1
    assert "DATABASE_URL is required" in capsys.readouterr().err


async def test_two_replicas_start_together_on_one_database(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "DATABASE_URL": empty_database_url, "PEERBRIDGE_DATA_DIR": str(tmp_path)}
    ports = [free_port(), free_port()]
    replicas = [
        subprocess.Popen(
            [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        await asyncio.gather(
            *(wait_ready(p, r, deadline) for p, r in zip(ports, replicas, strict=True))
        )
    finally:
        for replica in replicas:
            replica.send_signal(signal.SIGTERM)
        logs = [replica.communicate(timeout=30)[1].decode() for replica in replicas]

    assert [replica.returncode for replica in replicas] == [0, 0]
    # Exactly one replica applied the migrations; the other found nothing left to do.
    first = [m.name for m in discover()][0]
    assert sorted(f"migrations: {first}" in log for log in logs) == [False, True], logs
    assert sorted("migrations: none pending" in log for log in logs) == [False, True], logs


async def test_serve_starts_the_embedded_database_and_stops_it_on_ctrl_c() -> None:
    # Not tmp_path: as root the embedded server opens its parents, and pytest's are private.
    data_dir = Path(tempfile.mkdtemp(prefix="peerbridge-serve-test-"))
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PEERBRIDGE_DATA_DIR"] = str(data_dir)
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_ready(port, serve, time.monotonic() + 90)
        assert (data_dir / "pg" / "postmaster.pid").exists()
    finally:
        serve.send_signal(signal.SIGINT)
        log = serve.communicate(timeout=30)[1].decode()
    try:
        assert serve.returncode == 0, log
        assert "database: embedded" in log
        assert not (data_dir / "pg" / "postmaster.pid").exists(), "embedded server still running"
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    variables = [
        "DATABASE_URL" if name == "database_url" else f"PEERBRIDGE_{name.upper()}"
        for name in Settings.model_fields
    ]

    missing = [variable for variable in variables if f"| `{variable}` |" not in readme]
    assert missing == [], "add these to the configuration table in README.md"
