"""Single sign-on in Chromium: the sign-in page's "Sign in with ..." goes to a real OpenID
Connect provider on 127.0.0.1 (tests/oidc_provider.py) and comes back signed in."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from browser_support import check_accessibility, screenshot
from network import Network
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from playwright.async_api import Page, expect

from api.app import create_app
from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import users
from api.settings import Settings

EMAIL = "lead@peer.example"


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[Provider]:
    async with running_provider() as running:
        yield running


@pytest.fixture
def listening() -> socket.socket:
    # Bound before the settings are made: the redirect URI names this port.
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    return bound


@pytest.fixture
def settings(
    database_url: str, tmp_path: Path, provider: Provider, listening: socket.socket
) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        environment="development",
        delivery_worker_in_serve=False,
        public_base_url=f"http://127.0.0.1:{listening.getsockname()[1]}",
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_display_name="Example IdP",
    )


@pytest_asyncio.fixture
async def live_server(settings: Settings, listening: socket.socket) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", lifespan="on")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield settings.base_url
    finally:
        server.should_exit = True
        await serving
        listening.close()


async def test_sign_in_with_the_organizations_provider(
    page: Page, provider: Provider, network: Network, pool: asyncpg.Pool
) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id, EMAIL, StaffRole.COORDINATOR, "correct horse battery"
        ),
    )
    provider.person = {
        "email": EMAIL,
        "email_verified": True,
        "org": str(network.peer.id),
        "roles": ["coordinator"],
    }
    await page.goto("/console/login")
    await check_accessibility(page)
    await screenshot(page, "sign-in-with-provider")
    await page.get_by_role("link", name="Sign in with Example IdP").click()
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(page.get_by_text(f"{EMAIL} (coordinator)")).to_be_visible()

    provider.person = {**provider.person, "roles": ["supporter"]}
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("link", name="Sign in with Example IdP").click()
    await expect(page.get_by_role("alert")).to_contain_text("Single sign-on did not work")
