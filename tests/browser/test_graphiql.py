"""GraphiQL at GET /graphql works with no internet: its assets come from the package."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import REPO, screenshot
from playwright.async_api import Page, expect

from api.static_assets import STATIC_DIR

# Each vendored file and the npm package file it must equal (package.json pins the versions).
_VENDORED = {
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
}


async def test_graphiql_runs_a_query_with_the_outside_network_blocked(page: Page) -> None:
    outside: list[str] = []
    page.on("requestfailed", lambda request: outside.append(request.url))

    response = await page.goto("/graphql", wait_until="networkidle")

    assert response is not None and response.ok
    assert "script-src 'self'" in response.headers["content-security-policy"]
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    await expect(editor).to_be_visible()
    await page.locator(".graphiql-execute-button").click()
    await expect(page.locator(".graphiql-response")).to_contain_text("type Query")
    assert outside == []
    await screenshot(page, "graphiql")


@pytest.mark.contract
@pytest.mark.parametrize(("name", "source"), sorted(_VENDORED.items()))
def test_vendored_graphiql_files_equal_the_pinned_npm_packages(name: str, source: str) -> None:
    vendored = STATIC_DIR / "graphiql" / name
    assert vendored.read_bytes() == Path(REPO, "node_modules", source).read_bytes()
