"""Each role's day on the demo network, in Chromium: sign in, accept and assign, schedule and
record a session, a PHQ-9 with a positive item 9 and the warm handoff, a revoked consent that
redacts the inbox at once; a supporter cannot open another supporter's referral, nobody opens
another organization's. axe-core checks every page; screenshots go to tmp/artifacts."""

from __future__ import annotations

from uuid import UUID

import asyncpg
from browser_support import check_accessibility, screenshot, sign_in, sign_out
from playwright.async_api import Locator, Page, expect

from api.cli.demo import MRN_SYSTEMS, PEER_ORGS, demo_principal, load_demo
from api.cli.demo_users import DEMO_PASSWORD, demo_email
from api.db.uow import PostgresUnitOfWork
from api.domain.consents import DataClass, Purpose
from api.domain.staff import StaffRole
from api.services import consents
from api.settings import Settings


async def _busiest_peer_organization(pool: asyncpg.Pool) -> tuple[str, str]:
    """The demo peer organization with the most new requests, and its supporter account's
    peer supporter."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT o.name, min(s.display_name) AS supporter FROM referrals r "
            "JOIN organizations o ON o.id = r.performer_organization_id "
            "JOIN staff_users u ON u.organization_id = o.id AND u.role = 'supporter' "
            "JOIN peer_supporters s ON s.id = u.supporter_id "
            "WHERE r.status = 'requested' AND o.name = ANY($1) "
            "GROUP BY o.name ORDER BY count(*) DESC, o.name LIMIT 1",
            list(PEER_ORGS),
        )
    return row["name"], row["supporter"]


async def _look(page: Page, name: str) -> None:
    await check_accessibility(page)
    await screenshot(page, name)


async def _a_new_consented_referral(page: Page) -> str:
    await page.goto("/console/inbox?status=requested")
    named = page.locator("tbody tr a").filter(has_not_text="Withheld")
    await named.first.click()
    await page.wait_for_url("**/console/referrals/*")
    return page.url.rsplit("/", 1)[-1]


async def _someone_elses_referrals(pool: asyncpg.Pool, referral_id: str) -> tuple[UUID, UUID, str]:
    """Another supporter's referral in the same organization, another organization's referral,
    and the clinic that sent this one."""
    async with pool.acquire() as conn:
        mine = await conn.fetchrow(
            "SELECT r.performer_organization_id, r.assigned_supporter_id, o.name AS clinic "
            "FROM referrals r JOIN organizations o ON o.id = r.requester_organization_id "
            "WHERE r.id = $1",
            UUID(referral_id),
        )
        colleague = await conn.fetchval(
            "SELECT id FROM referrals WHERE performer_organization_id = $1 "
            "AND assigned_supporter_id IS DISTINCT FROM $2 AND assigned_supporter_id IS NOT NULL",
            mine["performer_organization_id"],
            mine["assigned_supporter_id"],
        )
        other_org = await conn.fetchval(
            "SELECT id FROM referrals WHERE performer_organization_id <> $1 "
            "AND requester_organization_id <> $1",
            mine["performer_organization_id"],
        )
    return colleague, other_org, mine["clinic"]


async def _patient_agreed_to_reports_back(pool: asyncpg.Pool, referral_id: str) -> None:
    """The referring clinic records (as its EHR would, through the API) the patient's consent
    that the peer program may send referrals back to it: what a handoff needs."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT patient_id, requester_organization_id FROM referrals WHERE id = $1",
            UUID(referral_id),
        )
    await consents.grant_consent(
        PostgresUnitOfWork(pool),
        demo_principal(row["requester_organization_id"]),
        consents.GrantConsent(
            patient_id=row["patient_id"],
            recipient_organization_id=row["requester_organization_id"],
            purposes=frozenset({Purpose.TREATMENT, Purpose.CARE_COORDINATION}),
            data_classes=frozenset({DataClass.DEMOGRAPHICS, DataClass.REFERRAL}),
        ),
    )


async def test_a_day_of_each_role_on_the_demo_network(
    page: Page, pool: asyncpg.Pool, settings: Settings
) -> None:
    await load_demo(pool, settings)
    peer, my_supporter = await _busiest_peer_organization(pool)

    # Coordinator: the inbox, a new referral, accept, a refused and a good assignment.
    await sign_in(page, demo_email(StaffRole.COORDINATOR, peer), DEMO_PASSWORD)
    await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    await _look(page, "coordinator-inbox")
    referral_id = await _a_new_consented_referral(page)
    await _look(page, "coordinator-referral")
    await page.get_by_role("button", name="Accept").click()
    await expect(page.get_by_role("status")).to_have_text("Referral accepted.")
    supporter = page.get_by_label("Assign a peer supporter")
    await supporter.select_option(label=await _option(supporter, "certification expired"))
    await page.get_by_role("button", name="Assign").click()
    await expect(page.get_by_role("alert")).to_contain_text("no valid (unexpired) certification")
    await supporter.select_option(label=await _option(supporter, my_supporter))
    await page.get_by_role("button", name="Assign").click()
    await expect(page.get_by_role("status")).to_have_text("Supporter assigned.")
    await sign_out(page)

    # Supporter: their caseload, start, schedule and record a session, a PHQ-9 with item 9
    # answered "several days": the crisis protocol and the warm handoff in one click.
    await sign_in(page, demo_email(StaffRole.SUPPORTER, peer), DEMO_PASSWORD)
    await expect(page.get_by_role("heading", name="My caseload")).to_be_visible()
    await _look(page, "supporter-caseload")
    await page.goto(f"/console/referrals/{referral_id}")
    await page.get_by_role("button", name="Start working on it").click()
    await expect(page.get_by_role("status")).to_have_text("Referral started.")
    await page.get_by_label("Format").select_option("one_on_one")
    await page.get_by_label("Delivery").select_option("phone")
    await page.get_by_label("Starts (UTC)").fill("2026-12-01T10:00")
    await page.get_by_role("button", name="Schedule").click()
    await expect(page.get_by_role("status")).to_have_text("Session scheduled.")
    await page.get_by_label("Session", exact=True).select_option(index=0)
    await page.get_by_role("button", name="Record attendance").click()
    await expect(page.get_by_role("status")).to_have_text("Attendance recorded.")
    await _patient_agreed_to_reports_back(pool, referral_id)
    await page.locator("#phq9-9").select_option("1")
    await page.get_by_role("button", name="Record PHQ-9").click()
    await expect(page.locator(".crisis")).to_contain_text("988")
    await _look(page, "supporter-safety-step")
    await page.get_by_role("button", name="Warm handoff to the referring clinic now").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Warm handoff sent to the referring clinic."
    )
    colleague, other_org, clinic = await _someone_elses_referrals(pool, referral_id)
    for stranger in (colleague, other_org):
        response = await page.goto(f"/console/referrals/{stranger}")
        assert response is not None and response.status == 404
        await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await sign_out(page)

    # Coordinator: the patient revokes sharing; the inbox redacts at once.
    await sign_in(page, demo_email(StaffRole.COORDINATOR, peer), DEMO_PASSWORD)
    await page.goto(f"/console/referrals/{referral_id}")
    await page.get_by_label("Record the patient's revocation").fill("participant asked")
    await page.get_by_role("button", name="Revoke consent").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("patient withheld")
    await page.goto("/console/inbox?status=all")
    row = page.locator(f'tbody tr:has(a[href="/console/referrals/{referral_id}"])')
    await expect(row).to_contain_text("Withheld")
    response = await page.goto(f"/console/referrals/{other_org}")
    assert response is not None and response.status == 404
    await sign_out(page)

    # Clinic: the referrals it sent, read-only, with the loop closed by the peer organization.
    await sign_in(page, demo_email(StaffRole.CLINIC, clinic), DEMO_PASSWORD)
    await expect(page.get_by_role("heading", name="Sent referrals")).to_be_visible()
    await _look(page, "clinic-sent")
    await page.goto(f"/console/referrals/{referral_id}")
    await expect(page.get_by_role("button", name="Accept")).to_have_count(0)
    await _look(page, "clinic-referral")
    await sign_out(page)

    # Supervisor: supporters, certifications (one expired), caseloads, metrics.
    await sign_in(page, demo_email(StaffRole.SUPERVISOR, peer), DEMO_PASSWORD)
    await expect(page.get_by_role("heading", name="Supporters and metrics")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("expired")
    await _look(page, "supervisor")
    assert clinic in MRN_SYSTEMS


async def _option(select: Locator, text: str) -> str:
    labels = await select.locator("option").all_inner_texts()
    return next(label.strip() for label in labels if text in label)
