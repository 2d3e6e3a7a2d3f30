"""The console inbox marks referrals still requested past their first-contact target as
"Overdue" (in words, not colour alone) and can list only those. The clock is moved by moving
the timers' due times, never by sleeping."""

from __future__ import annotations

import re
from uuid import UUID

import asyncpg
import httpx
from network import Network

from api.db.uow import PostgresUnitOfWork
from api.domain.referrals import Priority
from api.domain.staff import StaffRole
from api.services import referrals, users

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _sign_in(client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id, "lead@peer.example", StaffRole.COORDINATOR, PASSWORD
        ),
    )
    form = await client.get("/console/login")
    token = _TOKEN.search(form.text)
    assert token is not None
    await client.post(
        "/console/login",
        data={"email": "lead@peer.example", "password": PASSWORD, "csrf_token": token.group(1)},
    )


async def _refer(network: Network, priority: Priority) -> UUID:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            priority=priority,
        ),
    )
    return view.referral.id


_ROW = re.compile(r'<tr>\s*<td><a href="/console/referrals/([0-9a-f-]+)".*?</tr>', re.S)


def _rows(html: str) -> dict[str, str]:
    """Each listed referral's id and the text of its row."""
    return {found.group(1): found.group(0) for found in _ROW.finditer(html)}


async def test_the_inbox_marks_overdue_referrals_and_lists_only_them_on_request(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    late = await _refer(network, Priority.STAT)
    on_time = await _refer(network, Priority.ROUTINE)
    await pool.execute(
        "UPDATE referral_timers SET due_at = due_at - interval '2 hours' WHERE referral_id = $1",
        late,
    )
    await _sign_in(client, network, pool)

    inbox = await client.get("/console/inbox")
    assert inbox.status_code == 200
    rows = _rows(inbox.text)
    assert set(rows) == {str(late), str(on_time)}
    assert "Overdue" in rows[str(late)]
    assert "past its first-contact target" in rows[str(late)]
    assert "Overdue" not in rows[str(on_time)]

    only_overdue = await client.get("/console/inbox", params={"overdue": "1"})
    assert set(_rows(only_overdue.text)) == {str(late)}
    assert 'id="overdue" name="overdue" value="1" checked' in only_overdue.text

    refused = await client.get("/console/inbox", params={"overdue": "yes please"})
    assert refused.status_code == 422
    assert "overdue" in refused.text
