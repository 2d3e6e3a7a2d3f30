"""The coordinator records a patient's consent with the signed form uploaded (multipart, one
consent per recipient citing the form, all or nothing) and revokes it; every refusal is the
page again naming the field. Through the same consent services as the other doors."""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from network import MRN_SYSTEM, Network

from api.db.uow import PostgresUnitOfWork
from api.domain.documents import MAX_CONTENT_BYTES
from api.domain.patients import PatientIdentifier
from api.domain.staff import StaffRole
from api.services import patients, users

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PDF = b"%PDF-1.4\n% signed consent form (test)\n%%EOF\n"


async def _sign_in(
    client: httpx.AsyncClient, pool: asyncpg.Pool, organization_id: UUID, role: StaffRole
) -> str:
    email = f"{role.value}-{secrets.token_hex(3)}@peer.example"
    supporter = None
    if role is StaffRole.SUPPORTER:
        supporter = await pool.fetchval(
            "SELECT id FROM peer_supporters WHERE organization_id = $1 LIMIT 1", organization_id
        )
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(organization_id, email, role, PASSWORD, supporter_id=supporter),
    )
    client.cookies.clear()
    form = await client.get("/console/login")
    token = _TOKEN.search(form.text)
    assert token is not None
    signed_in = await client.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed_in.status_code == 303, signed_in.text
    home = await client.get("/console/", follow_redirects=True)
    token = _TOKEN.search(home.text)
    assert token is not None
    return token.group(1)


async def _walk_in(network: Network) -> UUID:
    """A participant the peer organization holds the record of (it registered them)."""
    patient = await patients.register_patient(
        network.uow(),
        network.as_peer,
        patients.RegisterPatient(
            identifiers=(PatientIdentifier(MRN_SYSTEM, f"WALK-{secrets.token_hex(4)}"),),
            given_name="Wren",
            family_name="Walkin",
        ),
    )
    return patient.id


def _fields(csrf: str, network: Network, **overrides: Any) -> dict[str, Any]:
    return {
        "csrf_token": csrf,
        "recipient_id": [str(network.clinic.id)],
        "data_classes": ["demographics", "referral"],
        "purposes": ["treatment", "care_coordination"],
        "period_start": "",
        "period_end": "",
        **overrides,
    }


async def _counts(pool: asyncpg.Pool, patient_id: UUID) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM consents WHERE patient_id = $1) AS consents, "
        "(SELECT count(*) FROM consent_forms WHERE patient_id = $1) AS forms",
        patient_id,
    )
    return row["consents"], row["forms"]


async def test_a_coordinator_records_a_consent_with_the_signed_form_and_revokes_it(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    patient_id = await _walk_in(network)
    csrf = await _sign_in(client, pool, network.peer.id, StaffRole.COORDINATOR)
    page = await client.get(f"/console/patients/{patient_id}")
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.text
    assert page.headers["cache-control"] == "no-store"

    submission = re.search(r'name="submission" value="([^"]+)"', page.text)
    assert submission is not None
    for _ in range(2):  # sent twice (a double click): recorded once
        recorded = await client.post(
            f"/console/patients/{patient_id}/consents",
            data=_fields(
                csrf,
                network,
                recipient_id=[str(network.clinic.id), str(network.stranger.id)],
                period_end="2031-01-31",
                submission=submission.group(1),
            ),
            files={"signed_form": ("signed.pdf", PDF, "application/pdf")},
        )
        assert recorded.status_code == 303, recorded.text
        assert recorded.headers["location"] == f"/console/patients/{patient_id}?done=recorded"
        assert await _counts(pool, patient_id) == (2, 1)
    shown = await client.get(recorded.headers["location"])
    assert "Consent recorded with its signed form." in shown.text
    assert shown.text.count(">active<") == 2
    assert "2031-01-31" in shown.text
    (form_link,) = set(re.findall(r'href="(/console/consent-forms/[0-9a-f-]+)"', shown.text))
    download = await client.get(form_link)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment")

    consent_id = await pool.fetchval(
        "SELECT id FROM consents WHERE patient_id = $1 AND recipient_organization_id = $2",
        patient_id,
        network.clinic.id,
    )
    revoked = await client.post(
        f"/console/patients/{patient_id}/consents/{consent_id}/revoke",
        data={"csrf_token": csrf, "reason": "participant asked"},
    )
    assert revoked.status_code == 303
    after = await client.get(revoked.headers["location"])
    assert "Consent revoked." in after.text
    assert "revoked (participant asked)" in after.text
    assert after.text.count(">active<") == 1


async def test_what_the_consent_form_refuses_is_named_and_nothing_is_kept(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    patient_id = await _walk_in(network)
    csrf = await _sign_in(client, pool, network.peer.id, StaffRole.COORDINATOR)
    url = f"/console/patients/{patient_id}/consents"
    pdf = {"signed_form": ("signed.pdf", PDF, "application/pdf")}
    cases: list[tuple[dict[str, Any], dict[str, Any], int, list[str]]] = [
        (
            _fields(csrf, network, recipient_id=[], data_classes=[], purposes=["nonsense"]),
            pdf,
            422,
            ["Recipients: choose at least one", "Purposes: choose from the list"],
        ),
        (_fields(csrf, network, data_classes=[]), pdf, 422, ["Data shared: name at least one"]),
        (_fields(csrf, network, purposes=[]), pdf, 422, ["Purposes: name at least one"]),
        (
            _fields(csrf, network, period_start="2030-02-01", period_end="2030-01-01"),
            pdf,
            422,
            ["Ends: must be after the start"],
        ),
        (_fields(csrf, network, period_end="31/01/2030"), pdf, 422, ["Ends: must be a date"]),
        (_fields(csrf, network), {}, 422, ["Signed form: choose the file"]),
        (
            _fields(csrf, network),
            {"signed_form": ("form.docx", b"PK\x03\x04", "application/msword")},
            422,
            ["Signed form: one of application/pdf"],
        ),
        (
            _fields(csrf, network),
            {"signed_form": ("big.pdf", b"%" * (MAX_CONTENT_BYTES + 1), "application/pdf")},
            413,
            ["Signed form: the file is larger than the 1 MB limit"],
        ),
        (
            _fields(csrf, network),
            {"signed_form": ("empty.pdf", b"", "application/pdf")},
            422,
            ["Signed form: the content is empty"],
        ),
        (
            _fields(csrf, network),
            {"signed_form": ("n" * 5000 + ".pdf", PDF, "application/pdf")},  # header too long
            400,
            ["the form could not be read"],
        ),
        # One good recipient and one that does not exist: neither consent nor form is kept.
        (
            _fields(csrf, network, recipient_id=[str(network.clinic.id), str(uuid.uuid4())]),
            pdf,
            403,
            ["not recorded", "Organization"],
        ),
    ]
    for fields, files, status, named in cases:
        response = await client.post(url, data=fields, files=files or {"unused": ("", b"")})
        assert response.status_code == status, (fields, files, response.status_code)
        assert response.headers["content-type"].startswith("text/html")
        for text in named:
            assert text in response.text, (text, fields)
    assert await _counts(pool, patient_id) == (0, 0)

    no_token = await client.post(url, data={**_fields("forged", network)}, files=pdf)
    assert no_token.status_code == 403
    assert await _counts(pool, patient_id) == (0, 0)


async def test_only_the_record_holder_records_and_only_a_coordinator_writes(
    client: httpx.AsyncClient, network: Network, pool: asyncpg.Pool
) -> None:
    # The clinic holds this patient's record: the peer coordinator sees the consent naming
    # their organization, may revoke it, and is told who records consents.
    csrf = await _sign_in(client, pool, network.peer.id, StaffRole.COORDINATOR)
    clinic_patient = network.patient.id
    page = await client.get(f"/console/patients/{clinic_patient}")
    assert page.status_code == 200
    assert "Only the organization holding this patient" in page.text
    assert 'enctype="multipart/form-data"' not in page.text
    forged = await client.post(
        f"/console/patients/{clinic_patient}/consents",
        data=_fields(csrf, network, recipient_id=[str(network.stranger.id)]),
        files={"signed_form": ("signed.pdf", PDF, "application/pdf")},
    )
    assert forged.status_code == 403
    assert "only the organization holding the patient" in forged.text

    walk_in = await _walk_in(network)
    csrf = await _sign_in(client, pool, network.peer.id, StaffRole.SUPPORTER)
    for address in (f"/console/patients/{walk_in}", f"/console/patients/{uuid.uuid4()}"):
        assert (await client.get(address)).status_code == 404  # not in their caseload
    refused = await client.post(
        f"/console/patients/{walk_in}/consents",
        data=_fields(csrf, network),
        files={"signed_form": ("signed.pdf", PDF, "application/pdf")},
    )
    assert refused.status_code == 404
    assert await _counts(pool, walk_in) == (0, 0)
