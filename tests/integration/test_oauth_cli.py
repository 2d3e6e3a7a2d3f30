"""`peerbridge clients ...` and `peerbridge keys ...` against a real database (and server)."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from joserfc.jwk import ECKey
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.app import create_app
from api.auth.demo import describe_demo_clients, register_demo_clients
from api.auth.smart_client import sign_assertion
from api.cli.main import main
from api.db.uow import PostgresUnitOfWork
from api.services.organizations import create_organization
from api.settings import Settings


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PEERBRIDGE_DATA_DIR", str(tmp_path))
    return tmp_path


async def _run(*argv: str) -> int:
    # Commands call asyncio.run(); a worker thread keeps them off the test's event loop.
    return await asyncio.to_thread(main, list(argv))


async def _org(capsys: pytest.CaptureFixture[str], name: str = "Riverside Clinic") -> str:
    assert await _run("orgs", "create", "--name", name, "--kind", "clinic") == 0
    return capsys.readouterr().out.strip().rsplit(" ", 1)[-1]


async def test_create_list_revoke_a_secret_client(
    env: Path, capsys: pytest.CaptureFixture[str], client: httpx.AsyncClient
) -> None:
    await _org(capsys)

    assert await _run("clients", "create", "--org", "Riverside Clinic", "--name", "Partner app",
                      "--scope", "user/HealthcareService.rs user/Organization.rs", "--json") == 0
    created = json.loads(capsys.readouterr().out)
    assert created["auth_method"] == "client_secret_basic"
    assert created["allowed_scopes"] == ["user/HealthcareService.rs", "user/Organization.rs"]
    credentials = (created["client_id"], created["client_secret"])
    form = {"grant_type": "client_credentials"}
    assert (await client.post("/oauth/token", data=form, auth=credentials)).status_code == 200

    assert await _run("clients", "list", "--json") == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["client_id"] == created["client_id"] and listed["status"] == "active"
    assert "client_secret" not in listed and "secret_hash" not in listed

    assert await _run("clients", "revoke", created["client_id"]) == 0
    assert "revoked client" in capsys.readouterr().out
    assert await _run("clients", "list", "--active") == 0
    assert created["client_id"] not in capsys.readouterr().out
    assert (await client.post("/oauth/token", data=form, auth=credentials)).status_code == 401


async def test_the_secret_is_printed_once_with_a_warning(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = await _org(capsys)
    assert await _run("clients", "create", "--org", org_id, "--name", "Partner",
                      "--scope", "user/Organization.rs") == 0
    out, err = capsys.readouterr()
    assert "client secret: " in out
    assert "cannot be shown again" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scope", "openid"], "not a SMART v2 resource scope"),
        (["--scope", "system/Task.rs system/Foo.rs"], "no FHIR R4 resource type is called 'Foo'"),
        (["--scope", "system/Task.rsu"], "in the order c r u d s: system/Task.rus"),
        (["--scope", "system/Task.rs", "--default-scope", "system/Patient.r"], "default scope"),
        (["--scope", "system/Task.rs", "--jwks-url", "http://keys.example/jwks"], "https"),
    ],
)
async def test_bad_registrations_are_clear_errors(
    env: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    await _org(capsys)
    assert await _run("clients", "create", "--org", "Riverside Clinic", "--name", "X",
                      *extra) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


async def test_the_readme_example_registration_is_accepted(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    match = re.search(r'clients create --org "[^"]*" --name "[^"]*"\s+--scope "([^"]+)"', readme)
    assert match is not None, "README.md no longer shows a `clients create` example"
    await _org(capsys)
    assert await _run("clients", "create", "--org", "Riverside Clinic", "--name", "Epic",
                      "--scope", match[1], "--json") == 0
    assert json.loads(capsys.readouterr().out)["allowed_scopes"] == match[1].split()


async def test_a_private_key_in_the_jwks_file_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _org(capsys)
    key = ECKey.generate_key("P-384", parameters={"kid": "k1"})
    jwks_file = env / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    assert await _run("clients", "create", "--org", "Riverside Clinic", "--name", "EHR",
                      "--scope", "system/Task.rs", "--jwks-file", str(jwks_file)) == 1
    assert "private key" in capsys.readouterr().err


async def test_keys_rotate_list_and_remove(
    env: Path, capsys: pytest.CaptureFixture[str], client: httpx.AsyncClient
) -> None:
    before = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    (old_kid,) = before

    assert await _run("keys", "rotate") == 0
    new_kid = capsys.readouterr().out.split()[3]
    assert await _run("keys", "list", "--json") == 0
    states = {row["kid"]: row["state"]
              for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert states == {old_kid: "retired", new_kid: "active"}

    assert await _run("keys", "remove", "--", new_kid) == 1
    assert "rotate first" in capsys.readouterr().err
    assert await _run("keys", "remove", "--", old_kid) == 0
    assert "no longer verify" in capsys.readouterr().out
    assert await _run("keys", "list", "--json") == 0
    states = {row["kid"]: row["state"]
              for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert states == {old_kid: "removed", new_kid: "active"}


# --- the copy-paste path: `peerbridge clients token` against a real HTTP server -------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _whoami(request: Request) -> JSONResponse:
    principal = request.state.principal
    return JSONResponse({"client_id": principal.client_id if principal else None})


@pytest.fixture
def server(database_url: str, env: Path) -> Iterator[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(Settings(database_url=database_url, data_dir=env, public_base_url=base))
    app.router.routes.append(Route("/test/whoami", _whoami))
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield base
    finally:
        uv.should_exit = True
        thread.join(10)


async def test_clients_token_gets_a_token_from_a_running_server(
    server: str, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _org(capsys)
    key = ECKey.generate_key("P-384", parameters={"kid": "ehr-1"})
    (env / "jwks.json").write_text(json.dumps({"keys": [key.as_dict(private=False)]}))
    (env / "key.jwk").write_text(json.dumps(key.as_dict(private=True)))
    assert await _run("clients", "create", "--org", "Riverside Clinic", "--name", "EHR",
                      "--scope", "system/ServiceRequest.rs", "--jwks-file",
                      str(env / "jwks.json"), "--json") == 0
    client_id = json.loads(capsys.readouterr().out)["client_id"]

    assert await _run("clients", "token", "--client-id", client_id, "--key",
                      str(env / "key.jwk"), "--url", server) == 0
    token = capsys.readouterr().out.strip()

    async with httpx.AsyncClient() as http:
        who = await http.get(f"{server}/test/whoami", headers={"authorization": f"Bearer {token}"})
    assert who.json() == {"client_id": client_id}
    assert await _run("clients", "token", "--client-id", "nobody", "--key",
                      str(env / "key.jwk"), "--url", server) == 1
    assert "invalid_client" in capsys.readouterr().err


async def test_demo_clients_are_idempotent_and_their_keys_get_tokens(
    env: Path, pool: Any, client: httpx.AsyncClient
) -> None:
    org = await create_organization(PostgresUnitOfWork(pool), name="Demo Clinic", kind="clinic")
    first = await register_demo_clients(pool, [("Demo Clinic", org.id)], env)
    again = await register_demo_clients(pool, [("Demo Clinic", org.id)], env)
    assert first == again
    (demo,) = first
    assert demo.key_path.stat().st_mode & 0o777 == 0o600
    key = json.loads(demo.key_path.read_text())
    token_url = (await client.get("/.well-known/smart-configuration")).json()["token_endpoint"]
    response = await client.post(token_url, data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": sign_assertion(demo.client_id, key, token_url),
    })
    assert response.status_code == 200, response.text

    # A wiped data directory re-keys the client instead of failing.
    demo.key_path.unlink()
    (rekeyed,) = await register_demo_clients(pool, [("Demo Clinic", org.id)], env)
    assert json.loads(rekeyed.key_path.read_text())["d"] != key["d"]
    text = describe_demo_clients([rekeyed], "http://127.0.0.1:8000")
    assert f"peerbridge clients token --client-id {demo.client_id}" in text
    assert "Authorization: Bearer $TOKEN" in text
