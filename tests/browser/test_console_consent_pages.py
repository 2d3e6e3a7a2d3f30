"""The coordinator's consent work and overdue marks on the demo network, in Chromium: the inbox
marks a referral past its first-contact target "Overdue" and filters to those; a consent is
recorded with the signed form uploaded (a refused one names its field), then revoked; revoking
the consent that names the organization redacts the inbox at once. axe-core checks every new
page; screenshots go to tmp/artifacts."""

from __future__ import annotations

import secrets
from uuid import UUID

import asyncpg
from browser_support import check_accessibility, screenshot, sign_in
from playwright.async_api import Page, expect

from api.cli.demo import PEER_ORGS, demo_principal, load_demo
from api.cli.demo_users import DEMO_PASSWORD, demo_email
from api.db.uow import PostgresUnitOfWork
from api.domain.patients import PatientIdentifier
from api.domain.staff import StaffRole
from api.services import patients
from api.settings import Settings

PDF = b"%PDF-1.4\n% signed consent form (browser test)\n%%EOF\n"


async def _look(page: Page, name: str) -> None:
    await check_accessibility(page)
    await screenshot(page, name)


async def _peer_with_requests(pool: asyncpg.Pool) -> tuple[str, UUID, UUID]:
    """A demo peer organization with new requests, its id, and one request made overdue (its
    first-contact timer moved two hours into the past)."""
    row = await pool.fetchrow(
        "SELECT o.name, o.id, min(r.id::text)::uuid AS referral FROM referrals r "
        "JOIN organizations o ON o.id = r.performer_organization_id "
        "WHERE r.status = 'requested' AND o.name = ANY($1) "
        "GROUP BY o.name, o.id ORDER BY count(*) DESC, o.name LIMIT 1",
        list(PEER_ORGS),
    )
    await pool.execute(
        "UPDATE referral_timers SET due_at = now() - interval '2 hours' WHERE referral_id = $1",
        row["referral"],
    )
    return row["name"], row["id"], row["referral"]


async def _walk_in(pool: asyncpg.Pool, organization_id: UUID) -> UUID:
    """A participant who came to the peer organization directly: it holds their record."""
    patient = await patients.register_patient(
        PostgresUnitOfWork(pool),
        demo_principal(organization_id),
        patients.RegisterPatient(
            identifiers=(PatientIdentifier("urn:example:walk-in", secrets.token_hex(4)),),
            given_name="Wren",
            family_name="Walkin",
        ),
    )
    return patient.id


async def _clinic_name(pool: asyncpg.Pool) -> str:
    name: str = await pool.fetchval(
        "SELECT name FROM organizations WHERE kind = 'clinic' ORDER BY name LIMIT 1"
    )
    return name


async def test_overdue_marks_and_a_consent_recorded_with_its_form_then_revoked(
    page: Page, pool: asyncpg.Pool, settings: Settings
) -> None:
    await load_demo(pool, settings)
    peer, peer_id, late = await _peer_with_requests(pool)
    await sign_in(page, demo_email(StaffRole.COORDINATOR, peer), DEMO_PASSWORD)

    # Overdue: in words in the row, and the inbox filtered to only those.
    await page.goto("/console/inbox?status=requested")
    late_row = page.locator(f'tbody tr:has(a[href="/console/referrals/{late}"])')
    await expect(late_row).to_contain_text("Overdue")
    await expect(page.locator("tbody tr").filter(has_text="Overdue")).to_have_count(1)
    await page.get_by_label("Overdue only").check()
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url("**overdue=1**")
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(late_row).to_be_visible()
    await _look(page, "coordinator-inbox-overdue")

    # A consent of the organization's own participant, with the signed form uploaded.
    walk_in = await _walk_in(pool, peer_id)
    clinic = await _clinic_name(pool)
    await page.goto(f"/console/patients/{walk_in}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Wren Walkin")
    await _look(page, "coordinator-patient-consents")
    await page.get_by_label(clinic).check()
    await page.get_by_label("Signed form").set_input_files(
        files=[{"name": "signed.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await page.get_by_role("button", name="Record the consent").click()
    await expect(page.get_by_role("alert")).to_contain_text("Data shared: name at least one")
    await expect(page.get_by_label(clinic)).to_be_checked()  # the form as it was left
    await _look(page, "coordinator-consent-refused")
    await page.get_by_label("Demographics").check()
    await page.get_by_label("Referrals").check()
    await page.get_by_label("Signed form").set_input_files(
        files=[{"name": "signed.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    await page.get_by_role("button", name="Record the consent").click()
    await expect(page.get_by_role("status")).to_have_text("Consent recorded with its signed form.")
    recorded = page.locator("tbody tr").filter(has_text=clinic)
    await expect(recorded).to_contain_text("active")
    await expect(recorded.get_by_role("link", name="Download")).to_be_visible()
    await _look(page, "coordinator-consent-recorded")
    await page.get_by_label(f"Record the patient's revocation of sharing with {clinic}").fill(
        "participant withdrew"
    )
    await page.get_by_role("button", name=f"Revoke the consent to share with {clinic}").click()
    await expect(page.get_by_role("status")).to_have_text("Consent revoked.")
    await expect(recorded).to_contain_text("revoked (participant withdrew)")

    # A clinic's patient referred here: revoking the consent naming this organization, from
    # the patient's page, redacts the inbox at once.
    await page.goto("/console/inbox?status=requested")
    named = page.locator("tbody tr a").filter(has_not_text="Withheld").first
    referral = (await named.get_attribute("href") or "").rsplit("/", 1)[-1]
    await named.click()
    await page.get_by_role("link", name="The patient's consents and signed forms").click()
    await page.wait_for_url("**/console/patients/*")
    await expect(page.get_by_role("heading", level=2, name="Record a consent")).to_be_visible()
    await expect(page.get_by_role("button", name="Record the consent")).to_have_count(0)
    await page.get_by_label(f"Record the patient's revocation of sharing with {peer}").fill(
        "participant asked"
    )
    await page.get_by_role("button", name=f"Revoke the consent to share with {peer}").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("name withheld")
    await _look(page, "coordinator-consent-revoked")
    await page.goto("/console/inbox?status=requested")
    row = page.locator(f'tbody tr:has(a[href="/console/referrals/{referral}"])')
    await expect(row).to_contain_text("Withheld")
