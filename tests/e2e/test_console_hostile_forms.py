"""Whatever a console form sends is refused as a page naming the field, never a 500."""

from __future__ import annotations

import re

import asyncpg
import httpx
from network import Network

from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import referrals, users

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _signed_in(client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool) -> str:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id, "lead@peer.example", StaffRole.COORDINATOR, PASSWORD
        ),
    )
    form = await client.get("/console/login")
    login_token = _TOKEN.search(form.text)
    assert login_token is not None
    await client.post(
        "/console/login",
        data={
            "email": "lead@peer.example",
            "password": PASSWORD,
            "csrf_token": login_token.group(1),
        },
    )
    page = await client.get("/console/inbox")
    token = _TOKEN.search(page.text)
    assert token is not None
    return token.group(1)


async def test_hostile_form_values_are_refused_as_pages(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    csrf = await _signed_in(client, network, pool)
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id, performer_organization_id=network.peer.id
        ),
    )
    base = f"/console/referrals/{view.referral.id}"
    cases = [
        (f"{base}/accept", {"version": "not a number"}, 422, "version"),
        (f"{base}/accept", {"version": "99"}, 409, ""),
        (f"{base}/reject", {"reason": "x\x00y"}, 422, "reason"),
        (f"{base}/reject", {"reason": "r" * 5000}, 422, "reason"),
        (f"{base}/assign", {"supporter_id": "../../etc"}, 422, "supporter_id"),
        (f"{base}/escalate", {"clinic_id": str(network.stranger.id), "reason": "x"}, 422, ""),
        ("/console/referrals/not-a-uuid/accept", {}, 404, ""),
        (f"/console/referrals/{network.patient.id}/accept", {}, 404, ""),
    ]
    for url, fields, status, named in cases:
        response = await client.post(url, data={"csrf_token": csrf, **fields})
        assert response.status_code == status, (url, fields, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        assert named in response.text
    lone_surrogate = await client.post(
        f"{base}/reject",
        content=f"csrf_token={csrf}&reason=%ED%A0%80".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert lone_surrogate.status_code in (200, 303, 422)


async def test_refusals_before_a_console_page_runs_are_pages_too(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/console/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    too_big = await client.post(
        "/console/login",
        content=b"email=" + b"x" * 3_000_000,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert too_big.status_code == 413
    assert too_big.headers["content-type"].startswith("text/html")


async def test_a_sign_in_body_the_form_parser_refuses_is_the_sign_in_page_again(
    client: httpx.AsyncClient,
) -> None:
    name = b'"' + b"a" * 6000 + b'"'
    unreadable = await client.post(
        "/console/login",
        content=b'--x\r\nContent-Disposition: form-data; name="email"; filename=' + name
        + b"\r\n\r\nz\r\n--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert unreadable.status_code == 400
    assert unreadable.headers["content-type"].startswith("text/html")
    assert "could not be read" in unreadable.text
