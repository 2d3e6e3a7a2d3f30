"""Shared fixtures: one PostgreSQL per session, a fresh migrated database per test.

PostgreSQL is `DATABASE_URL` when set (its server must let us CREATE DATABASE), else an embedded
server in a temporary directory. The schema is migrated once into a template database; each test
that asks for `database_url` gets its own copy (`CREATE DATABASE ... TEMPLATE`), dropped after.
The next copy is prepared while a test runs, so isolation costs a test almost nothing.

Fixtures for other tests: `database_url`, `settings`, `pool`, `app`, `client`, `empty_database_url`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from network import Network, build_network
from starlette.applications import Starlette

from api.app import create_app
from api.db.databases import create_database, drop_database, url_for_database
from api.db.embedded import EmbeddedPostgres
from api.db.migrate import migrate
from api.db.pool import create_pool
from api.settings import Settings

# Every database this session creates starts with it, so leftovers are easy to spot and drop.
SESSION_PREFIX = f"pb_test_{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL on the test server with the right to create databases."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    # Not pytest's tmp_path: the embedded server (as root) opens the permissions of every parent
    # directory, and pytest would close them again under a running server.
    data_dir = Path(tempfile.mkdtemp(prefix="peerbridge-test-pg-"))
    embedded = EmbeddedPostgres(data_dir, delete_on_stop=True)
    try:
        yield embedded.start()
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


class _DatabaseFactory:
    """Hands out fresh copies of the template database; prepares the next one in the background."""

    def __init__(self, admin: asyncpg.Connection, template: str) -> None:
        self._admin = admin
        self._template = template
        self._lock = asyncio.Lock()  # one admin connection: one statement at a time
        self._counter = 0
        self._prepared: asyncio.Task[str] | None = None
        self._drops: list[asyncio.Task[None]] = []

    async def take(self) -> str:
        name = await (self._prepared or self._create())
        self._prepared = asyncio.create_task(self._create())
        return name

    def give_back(self, name: str) -> None:
        self._drops.append(asyncio.create_task(self._drop(name)))

    async def close(self) -> None:
        if self._prepared is not None:
            self.give_back(await self._prepared)
        await asyncio.gather(*self._drops)

    async def _create(self) -> str:
        self._counter += 1
        name = f"{SESSION_PREFIX}_{self._counter}"
        async with self._lock:
            await create_database(self._admin, name, template=self._template)
        return name

    async def _drop(self, name: str) -> None:
        async with self._lock:
            await drop_database(self._admin, name)


@pytest_asyncio.fixture(scope="session")
async def _database_factory(postgres_admin_url: str) -> AsyncIterator[_DatabaseFactory]:
    admin = await asyncpg.connect(postgres_admin_url)
    template = f"{SESSION_PREFIX}_template"
    try:
        await create_database(admin, template)
        # migrate() closes its connection: a template must have none when it is copied.
        await migrate(url_for_database(postgres_admin_url, template))
        factory = _DatabaseFactory(admin, template)
        try:
            yield factory
        finally:
            await factory.close()
    finally:
        await drop_database(admin, template)
        await admin.close()


@pytest_asyncio.fixture
async def database_url(
    _database_factory: _DatabaseFactory, postgres_admin_url: str
) -> AsyncIterator[str]:
    """The URL of this test's own database, migrated to the current schema."""
    name = await _database_factory.take()
    try:
        yield url_for_database(postgres_admin_url, name)
    finally:
        _database_factory.give_back(name)


@pytest_asyncio.fixture
async def empty_database_url(postgres_admin_url: str) -> AsyncIterator[str]:
    """The URL of a new database with no schema at all (migration tests)."""
    name = f"{SESSION_PREFIX}_empty_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        await create_database(admin, name)
        yield url_for_database(postgres_admin_url, name)
    finally:
        await drop_database(admin, name)
        await admin.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The delivery worker is left out of the app: tests that deliver run their own, with
    # short timings, and the others keep their statement counts and connections to themselves.
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        environment="development",
        delivery_worker_in_serve=False,
    )


@pytest_asyncio.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The full app with its lifespan running (pool open)."""
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest_asyncio.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest_asyncio.fixture
async def network(pool: asyncpg.Pool) -> Network:
    """Clinic, peer organization, consented patient, program and supporters (tests/network.py)."""
    return await build_network(pool)
