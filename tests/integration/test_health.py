from __future__ import annotations

import logging
import shutil
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from api.app import create_app
from api.db import migrate
from api.settings import Settings


async def test_healthz_answers_while_the_process_is_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_503_while_a_migration_is_pending(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A build that ships one more migration than the database has.
    for migration in migrate.discover():
        shutil.copy(migration.path, tmp_path)
    (tmp_path / "9999_not_yet.sql").write_text("SELECT 1;\n")
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", tmp_path)

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "reason": "migrations pending: 9999_not_yet"}


async def test_readyz_reason_holds_no_connection_detail(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    await app.state.pool.close()  # as if the database went away

    response = await client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "reason": "database unavailable"}


async def test_bodies_over_the_limit_get_413(tmp_path: Path, database_url: str) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path, max_request_body_bytes=1024)
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            declared = await client.post("/healthz", content=b"x" * 2048)

            async def chunks():  # no Content-Length: the limit must hold while streaming
                for _ in range(4):
                    yield b"x" * 512

            streamed = await client.post("/healthz", content=chunks())
            small = await client.get("/healthz")

    assert declared.status_code == 413
    assert declared.json() == {"error": "request_too_large", "max_bytes": 1024}
    assert streamed.status_code in (405, 413)  # the route may refuse POST before reading
    assert small.status_code == 200


async def test_access_log_has_method_path_status_and_never_the_query(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="peerbridge.access"):
        await client.get("/healthz", params={"identifier": "MRN-12345"})

    [line] = [r.getMessage() for r in caplog.records if r.name == "peerbridge.access"]
    assert line.startswith("GET /healthz 200 ")
    assert "MRN" not in line
