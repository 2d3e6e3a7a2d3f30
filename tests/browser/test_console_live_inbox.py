"""The inbox in Chromium hears a referral the clinic creates through GraphQL and offers to
refresh; without JavaScript the same page still works, as fresh as its last load."""

from __future__ import annotations

import secrets

import asyncpg
import httpx
from browser_support import check_accessibility, screenshot, sign_in
from graphql_support import GraphQL
from network import Network
from playwright.async_api import Browser, Page, expect

from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import users

PASSWORD = "correct horse battery"
EMAIL = "lead@peer.example"
CREATE = """mutation($input: CreateReferralInput!) { createReferral(input: $input) { id } }"""


async def _coordinator(pool: asyncpg.Pool, network: Network) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(network.peer.id, EMAIL, StaffRole.COORDINATOR, PASSWORD),
    )


async def test_the_inbox_offers_a_refresh_when_a_referral_arrives(
    page: Page, live_server: str, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(pool, network)
    await sign_in(page, EMAIL, PASSWORD)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await expect(page.get_by_text("No referrals here.")).to_be_visible()
    live = page.locator("#live-updates")
    await expect(live).to_have_attribute("data-live", "on")  # the stream is listening

    async with httpx.AsyncClient(base_url=live_server) as http:
        clinic = await GraphQL.as_organization(http, pool, network.clinic)
        created = await clinic.data(
            CREATE,
            input={
                "patientId": str(network.patient.id),
                "performerOrganizationId": str(network.peer.id),
                "idempotencyKey": secrets.token_hex(8),
            },
        )
    assert created["createReferral"]["id"]

    await expect(live).to_contain_text("1 new update")
    await check_accessibility(page)
    await screenshot(page, "coordinator-inbox-live-update")
    await live.get_by_role("link", name="Refresh").click()
    await expect(page.get_by_role("link", name=network.patient.given_name)).to_be_visible()
    await expect(live).to_have_text("")


async def test_the_inbox_works_without_javascript(
    browser: Browser, live_server: str, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(pool, network)
    context = await browser.new_context(base_url=live_server, java_script_enabled=False)
    try:
        page = await context.new_page()
        await sign_in(page, EMAIL, PASSWORD)
        await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        await expect(page.locator("#live-updates")).to_have_text("")
        await expect(page.get_by_text("No referrals here.")).to_be_visible()
    finally:
        await context.close()
