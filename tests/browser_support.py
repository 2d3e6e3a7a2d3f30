"""Helpers for the browser tests (tests/browser): accessibility checks and screenshots."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "tmp" / "artifacts" / "screenshots"
AXE_SCRIPT = REPO / "node_modules" / "axe-core" / "axe.min.js"
_BLOCKING_IMPACTS = frozenset({"serious", "critical"})


async def check_accessibility(page: Page) -> None:
    """axe-core on the page as it is now: no serious or critical WCAG 2 A/AA violation."""
    await page.add_script_tag(path=str(AXE_SCRIPT))
    violations = await page.evaluate(
        "async () => (await axe.run(document, {runOnly: {type: 'tag', "
        "values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations"
    )
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in _BLOCKING_IMPACTS
    ]
    assert not blocking, f"{page.url}: " + "; ".join(blocking)


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, email: str, password: str) -> None:
    """Sign in through the form, as a person would (keyboard only)."""
    await page.goto("/console/login")
    await page.get_by_label("E-mail address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_label("Password").press("Enter")
    await page.wait_for_load_state()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/console/login")
