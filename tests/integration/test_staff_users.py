"""Staff accounts of the console: `peerbridge users ...`, argon2id hashes, sign-in rules."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from network import Network

from api.cli.main import main
from api.db.uow import PostgresUnitOfWork
from api.domain.errors import Invalid, NotFound, RateLimited
from api.domain.staff import StaffRole
from api.services import users

POLICY = users.LoginPolicy(timedelta(minutes=30), timedelta(hours=12), max_failures=3)
PASSWORD = "correct horse battery"


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PEERBRIDGE_DATA_DIR", str(tmp_path))
    return tmp_path


async def _run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return await asyncio.to_thread(main, list(argv))


async def test_users_create_list_disable_and_reset_password_from_the_command_line(
    env: Path,
    network: Network,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    peer = str(network.peer.id)
    assert (
        await _run(
            monkeypatch,
            "users",
            "create",
            "--org",
            peer,
            "--email",
            "lead@peer.example",
            "--role",
            "coordinator",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        == 0
    )
    assert "created coordinator account lead@peer.example" in capsys.readouterr().out
    async with pool.acquire() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM staff_users")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    assert await _run(monkeypatch, "users", "list", "--org", peer) == 0
    assert "lead@peer.example" in capsys.readouterr().out

    signed_in = await users.sign_in(
        PostgresUnitOfWork(pool), "Lead@Peer.example", PASSWORD, None, POLICY
    )
    assert (
        await _run(
            monkeypatch,
            "users",
            "reset-password",
            "--email",
            "lead@peer.example",
            "--password-stdin",
            stdin="another long password\n",
        )
        == 0
    )
    assert await users.resume_session(PostgresUnitOfWork(pool), signed_in.token, POLICY) is None
    await users.sign_in(
        PostgresUnitOfWork(pool), "lead@peer.example", "another long password", None, POLICY
    )

    assert await _run(monkeypatch, "users", "disable", "--email", "lead@peer.example") == 0
    with pytest.raises(users.LoginRefused):
        await users.sign_in(
            PostgresUnitOfWork(pool), "lead@peer.example", "another long password", None, POLICY
        )


async def test_a_bad_user_command_prints_one_line_and_fails(
    env: Path,
    network: Network,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        await _run(
            monkeypatch,
            "users",
            "create",
            "--org",
            str(network.peer.id),
            "--email",
            "x@peer.example",
            "--role",
            "coordinator",
            "--password-stdin",
            stdin="short\n",
        )
        == 1
    )
    error = capsys.readouterr().err
    assert error.startswith("peerbridge: error:") and "password" in error
    assert error.count("\n") == 1


async def test_a_supporter_account_names_a_supporter_of_its_own_organization(
    network: Network, pool: asyncpg.Pool
) -> None:
    def command(role: StaffRole, supporter: object = None) -> users.CreateStaffUser:
        return users.CreateStaffUser(network.peer.id, "s@peer.example", role, PASSWORD, supporter)  # type: ignore[arg-type]

    with pytest.raises(Invalid):
        await users.create_user(PostgresUnitOfWork(pool), command(StaffRole.SUPPORTER))
    with pytest.raises(Invalid):
        await users.create_user(PostgresUnitOfWork(pool), command(StaffRole.CLINIC))
    with pytest.raises(NotFound):
        await users.create_user(
            PostgresUnitOfWork(pool), command(StaffRole.SUPPORTER, network.clinic.id)
        )
    user = await users.create_user(
        PostgresUnitOfWork(pool), command(StaffRole.SUPPORTER, network.supporter.id)
    )
    assert users.principal_of(user).caseload_of == network.supporter.id


async def test_sign_in_is_refused_alike_and_then_rate_limited(
    network: Network, pool: asyncpg.Pool
) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id, "lead@peer.example", StaffRole.COORDINATOR, PASSWORD
        ),
    )
    for email, password in (
        ("lead@peer.example", "wrong password!"),
        ("nobody@peer.example", PASSWORD),
        ("lead@peer.example", "\ud800\x00"),
        ("LEAD@peer.example", "wrong again!"),
    ):
        with pytest.raises(users.LoginRefused) as refused:
            await users.sign_in(PostgresUnitOfWork(pool), email, password, "10.0.0.1", POLICY)
        assert refused.value.message == "the e-mail address or password is not right"
    with pytest.raises(RateLimited):  # three failures: even the right password waits
        await users.sign_in(
            PostgresUnitOfWork(pool), "lead@peer.example", PASSWORD, "10.0.0.2", POLICY
        )


async def test_a_session_ends_when_idle_too_long(network: Network, pool: asyncpg.Pool) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id, "lead@peer.example", StaffRole.COORDINATOR, PASSWORD
        ),
    )
    signed_in = await users.sign_in(
        PostgresUnitOfWork(pool), "lead@peer.example", PASSWORD, None, POLICY
    )
    assert await users.resume_session(PostgresUnitOfWork(pool), signed_in.token, POLICY)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE console_sessions SET last_seen_at = now() - interval '31 min'")
    assert await users.resume_session(PostgresUnitOfWork(pool), signed_in.token, POLICY) is None
