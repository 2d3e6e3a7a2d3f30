"""`peerbridge users create --single-sign-on-only`: an account with no password, reached only
through the organization's OpenID Connect provider."""

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
from api.domain.staff import StaffRole
from api.services import users

POLICY = users.LoginPolicy(timedelta(minutes=30), timedelta(hours=12), max_failures=50)
EMAIL = "lead@peer.example"


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PEERBRIDGE_DATA_DIR", str(tmp_path))
    return tmp_path


async def _run(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return await asyncio.to_thread(main, list(argv))


def _create(network: Network, *how: str) -> list[str]:
    return [
        *("users", "create", "--org", str(network.peer.id), "--email", EMAIL),
        *("--role", "coordinator", *how),
    ]


async def test_an_account_without_password_signs_in_only_by_single_sign_on(
    env: Path,
    network: Network,
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await _run(monkeypatch, *_create(network, "--single-sign-on-only")) == 0
    assert f"created coordinator account {EMAIL}" in capsys.readouterr().out

    for password in ("", "!single-sign-on-only", "any password at all"):
        with pytest.raises(users.LoginRefused):
            await users.sign_in(PostgresUnitOfWork(pool), EMAIL, password, None, POLICY)

    policy = users.SingleSignOnPolicy("org", "roles", frozenset(StaffRole), network.peer.id)
    claims = {"email": EMAIL, "roles": ["coordinator"]}
    signed_in = await users.sign_in_with_provider(PostgresUnitOfWork(pool), claims, policy, POLICY)
    assert signed_in.session.user.email == EMAIL


async def test_an_account_is_made_with_a_password_or_without_one_never_both(
    env: Path, network: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = _create(network, "--password-stdin", "--single-sign-on-only")
    with pytest.raises(SystemExit):
        await _run(monkeypatch, *both, stdin="correct horse battery\n")
    with pytest.raises(SystemExit):
        await _run(monkeypatch, *_create(network))
