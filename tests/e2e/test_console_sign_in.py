"""The console's door: sign-in form, session cookie, CSRF, headers, refusals as pages."""

from __future__ import annotations

import re
from urllib.parse import quote_from_bytes

import asyncpg
import httpx
from network import Network

from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import referrals, users

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _coordinator(network: Network, pool: asyncpg.Pool) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id, "lead@peer.example", StaffRole.COORDINATOR, PASSWORD
        ),
    )


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    form = await client.get("/console/login")
    token = _TOKEN.search(form.text)
    assert token is not None
    return await client.post(
        "/console/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )


async def test_sign_in_sets_a_strict_session_cookie_and_opens_the_role_home(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(network, pool)
    response = await sign_in(client, "lead@peer.example", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/inbox"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("peerbridge-console=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]

    home = await client.get("/console/")
    assert home.status_code == 303 and home.headers["location"] == "/console/inbox"


async def test_a_wrong_password_and_an_unknown_address_get_the_same_page(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(network, pool)
    wrong = await sign_in(client, "lead@peer.example", "not the password")
    unknown = await sign_in(client, "nobody@peer.example", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert _TOKEN.sub("", wrong.text) == _TOKEN.sub("", unknown.text)
    assert "lead@peer.example" not in wrong.text


async def test_a_sign_in_without_the_form_token_is_refused(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(network, pool)
    response = await client.post(
        "/console/login",
        data={"email": "lead@peer.example", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 403
    assert "peerbridge-console=" not in response.headers.get("set-cookie", "")


async def test_pages_need_a_session_and_posts_need_its_csrf_token(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    assert (await client.get("/console/inbox")).headers["location"] == "/console/login"
    await _coordinator(network, pool)
    await sign_in(client, "lead@peer.example", PASSWORD)
    refused = await client.post("/console/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await client.get("/console/")).status_code == 303  # still signed in
    page = await client.get("/console/inbox")
    token = _TOKEN.search(page.text)
    assert token is not None
    out = await client.post("/console/logout", data={"csrf_token": token.group(1)})
    assert out.headers["location"] == "/console/login"
    assert (await client.get("/console/inbox")).headers["location"] == "/console/login"


async def test_hostile_sign_in_input_is_a_page_not_a_crash(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(network, pool)
    # NUL, bytes that are no UTF-8 (a lone surrogate's encoding), far too long values
    for email, password in (
        (b"a\x00b@x.example", b"p\x00"),
        (b"\xed\xb2\x80@x.example", b"\xed\xa0\x80"),
        (b"x" * 10_000, b"y" * 10_000),
    ):
        form = await client.get("/console/login")
        token = _TOKEN.search(form.text)
        assert token is not None
        body = b"&".join(
            name + b"=" + quote_from_bytes(value).encode()
            for name, value in (
                (b"email", email),
                (b"password", password),
                (b"csrf_token", token.group(1).encode()),
            )
        )
        response = await client.post(
            "/console/login",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 401, email[:20]


async def test_what_a_person_reads_in_the_console_is_audited_as_that_person(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    await _coordinator(network, pool)
    await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id, performer_organization_id=network.peer.id
        ),
    )
    await sign_in(client, "lead@peer.example", PASSWORD)
    inbox = await client.get("/console/inbox")
    assert inbox.status_code == 200
    assert network.patient.given_name in inbox.text
    async with pool.acquire() as conn:
        person = await conn.fetchval("SELECT id FROM staff_users")
        rows = await conn.fetch(
            "SELECT operation, resource_type, subject, client_id, organization_id "
            "FROM audit_events WHERE client_id = 'console'"
        )
    assert {(r["operation"], r["resource_type"]) for r in rows} >= {
        ("readReferral", "Referral"),
        ("readPatient", "Patient"),
    }
    assert {(r["subject"], r["organization_id"]) for r in rows} == {(str(person), network.peer.id)}
