"""Browser tests: PeerBridge served by uvicorn on 127.0.0.1, driven by Playwright through
Chromium from the distribution's packages (`apt-get install chromium`; `.ci/run` and
`scripts/test` install it when missing). Every request a page makes to anywhere but the test
server is aborted, so a page that needs a CDN fails here as it would on a hospital network.

Fixtures: `live_server` (base URL), `browser`, `page`; helpers in tests/browser_support.py.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, Page, Route, async_playwright

from api.app import create_app
from api.settings import Settings

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")


def _chromium() -> str:
    for path in CHROMIUM_PATHS:
        if Path(path).exists():
            return path
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail(
        "Chromium is missing: run `apt-get install -y chromium` (scripts/test does as root)"
    )


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=_chromium())
        try:
            yield launched
        finally:
            await launched.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest_asyncio.fixture
async def live_server(settings: Settings) -> AsyncIterator[str]:
    """The full app (lifespan and all) on a free local port, in the test's event loop."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def _only_local(route: Route) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        await route.continue_()
    else:
        await route.abort("internetdisconnected")


@pytest_asyncio.fixture
async def page(browser: Browser, live_server: str) -> AsyncIterator[Page]:
    # bypass_csp lets the test inject axe-core; the pages' own CSP is asserted on headers.
    context = await browser.new_context(base_url=live_server, bypass_csp=True)
    await context.route("**/*", _only_local)
    opened = await context.new_page()
    try:
        yield opened
    finally:
        await context.close()
