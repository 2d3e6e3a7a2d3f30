"""Bearer tokens at the middleware: what is accepted, what is refused, revocation, key rotation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from joserfc import jws
from joserfc.jwk import RSAKey
from network import Network
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import kek, keys
from api.auth.clients import create_client, revoke_client
from api.auth.errors import forbidden_response
from api.auth.runtime import AuthRuntime
from api.db.signing_keys import SigningKeyRepository
from api.db.uow import PostgresUnitOfWork
from api.domain.errors import Conflict, Forbidden, NotFound
from api.domain.referrals import Coding, Priority
from api.services import referrals
from api.services.organizations import create_organization
from api.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Short caches so revocation and rotation by "another process" show within the test.
    return Settings(database_url=database_url, data_dir=tmp_path, environment="development",
                    auth_client_status_ttl_s=0.3, auth_signing_key_refresh_s=0.3)


async def _whoami(request: Request) -> JSONResponse:
    principal = request.state.principal
    if principal is None:
        return JSONResponse({"principal": None}, 401)
    return JSONResponse({"client_id": principal.client_id,
                         "organization_id": str(principal.organization_id),
                         "scopes": [str(scope) for scope in principal.scopes]})


async def _read_referral(request: Request) -> Response:
    """A plain-HTTP door over the referral service, mapping Forbidden with api.auth.errors."""
    try:
        view = await referrals.get_referral(
            PostgresUnitOfWork(request.app.state.pool), request.state.principal,
            UUID(request.path_params["id"]),
        )
    except Forbidden as error:
        return forbidden_response(error)
    except NotFound:
        return JSONResponse({"error": "not_found"}, 404)
    return JSONResponse({"id": str(view.referral.id)})


@pytest.fixture
def protected(app: Starlette) -> str:
    app.router.routes.append(Route("/test/whoami", _whoami))
    app.router.routes.append(Route("/test/referrals/{id}", _read_referral))
    return "/test/whoami"


def _runtime(app: Starlette) -> AuthRuntime:
    runtime: AuthRuntime = app.state.auth
    return runtime


async def _secret_client(pool: asyncpg.Pool, organization_id: UUID,
                         scopes: list[str] | None = None) -> tuple[str, str]:
    registered = await create_client(pool, organization_id=organization_id, name="Partner",
                                     scopes=scopes or ["system/ServiceRequest.rs"])
    assert registered.secret is not None
    return registered.client.client_id, registered.secret


async def _token(client: httpx.AsyncClient, credentials: tuple[str, str]) -> str:
    response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=credentials)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _call(client: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    return await client.get(path, headers={"authorization": f"Bearer {token}"})


@pytest.fixture
async def org_id(pool: asyncpg.Pool) -> UUID:
    org = await create_organization(PostgresUnitOfWork(pool), name=f"Clinic {secrets.token_hex(3)}",
                                    kind="clinic")
    return org.id


# --- forged tokens --------------------------------------------------------------------------

def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _sign(app: Starlette, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Sign with PeerBridge's own current key: only the named defect makes the token bad."""
    signer = await _runtime(app).keys.signer()
    header = {name: value for name, value in header.items() if value is not None}
    payload = json.dumps({k: v for k, v in claims.items() if v is not None})
    return jws.serialize_compact(header, payload, signer.private, algorithms=[signer.alg])


async def _good_parts(app: Starlette, client_id: str, org: UUID) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
    config = _runtime(app).config
    signer = await _runtime(app).keys.signer()
    now = int(time.time())
    header = {"alg": "RS256", "typ": "at+jwt", "kid": signer.kid}
    claims = {"iss": config.issuer, "sub": client_id, "aud": config.audience, "exp": now + 200,
              "iat": now, "jti": secrets.token_hex(8), "client_id": client_id,
              "scope": "system/ServiceRequest.rs", "org": str(org)}
    return header, claims


_BAD_TOKENS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("expired", {}, {"exp": -120, "iat": -300}),
    ("future nbf", {}, {"nbf": 600}),
    ("future iat", {}, {"iat": 600, "exp": 800}),
    ("wrong aud", {}, {"aud": "https://other.example"}),
    ("wrong iss", {}, {"iss": "https://other.example"}),
    ("missing exp", {}, {"exp": None}),
    ("missing jti", {}, {"jti": None}),
    ("missing iat", {}, {"iat": None}),
    ("lifetime over 300 s", {}, {"exp": 3600}),
    ("unknown kid", {"kid": "not-a-key"}, {}),
    ("missing kid", {"kid": None}, {}),
    ("wrong typ", {"typ": "JWT"}, {}),
    ("missing typ", {"typ": None}, {}),
    ("jku header", {"jku": "https://attacker.example/jwks"}, {}),
    ("x5u header", {"x5u": "https://attacker.example/cert"}, {}),
    ("another organization", {}, {"org": "00000000-0000-0000-0000-000000000001"}),
]


@pytest.mark.parametrize(("case", "header", "claims"), _BAD_TOKENS,
                         ids=[case for case, _, _ in _BAD_TOKENS])
async def test_defective_tokens_get_401_invalid_token(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID,
    case: str, header: dict[str, Any], claims: dict[str, Any],
) -> None:
    client_id, _ = await _secret_client(pool, org_id)
    good_header, good_claims = await _good_parts(app, client_id, org_id)
    now = int(time.time())
    for name in ("exp", "iat", "nbf"):
        if isinstance(claims.get(name), int):
            claims = {**claims, name: now + claims[name]}
    token = await _sign(app, {**good_header, **header}, {**good_claims, **claims})
    # A control: the same recipe without the defect is accepted.
    control = await _sign(app, good_header, good_claims)
    assert (await _call(client, protected, control)).status_code == 200

    response = await _call(client, protected, token)

    assert response.status_code == 401, case
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_unsigned_hmac_embedded_key_and_tampered_tokens_are_refused(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID
) -> None:
    client_id, _ = await _secret_client(pool, org_id)
    header, claims = await _good_parts(app, client_id, org_id)
    signing_input = (_b64(json.dumps({**header, "alg": "none"}).encode()) + "."
                     + _b64(json.dumps(claims).encode()))
    unsigned = signing_input + "."
    # HS256 "signed" with our published public key as the secret.
    public_pem = (await _runtime(app).keys.signer()).private.as_pem(private=False)
    hs_input = (_b64(json.dumps({**header, "alg": "HS256"}).encode()) + "."
                + _b64(json.dumps(claims).encode()))
    hmac_token = hs_input + "." + _b64(
        hmac.new(public_pem, hs_input.encode(), hashlib.sha256).digest())
    # The attacker's own key, offered in the header under our kid.
    attacker = RSAKey.generate_key(2048)
    embedded = jws.serialize_compact(
        {**header, "jwk": attacker.as_dict(private=False)}, json.dumps(claims), attacker,
        algorithms=["RS256"])
    signed_by_attacker = jws.serialize_compact(header, json.dumps(claims), attacker,
                                               algorithms=["RS256"])
    good = await _sign(app, header, claims)
    head, _, signature = good.split(".")
    tampered = ".".join((head, _b64(json.dumps({**claims, "scope": "system/*.cruds"}).encode()),
                         signature))

    for token in (unsigned, hmac_token, embedded, signed_by_attacker, tampered, "", "a.b",
                  "x" * 20000):
        response = await _call(client, protected, token)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"


async def test_a_client_assertion_is_not_an_access_token(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID
) -> None:
    client_id, _ = await _secret_client(pool, org_id)
    header, claims = await _good_parts(app, client_id, org_id)
    assertion_like = await _sign(app, {**header, "typ": "JWT"},
                                 {**claims, "aud": _runtime(app).config.token_url})
    assert (await _call(client, protected, assertion_like)).status_code == 401


async def test_no_or_non_bearer_credentials_leave_the_principal_empty(
    client: httpx.AsyncClient, protected: str
) -> None:
    assert (await client.get(protected)).json() == {"principal": None}
    basic = await client.get(protected, auth=("user", "password"))
    assert basic.json() == {"principal": None}


async def test_public_endpoints_ignore_a_bad_token(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/.well-known/smart-configuration", "/.well-known/jwks.json",
                 "/oauth/jwks", "/.well-known/oauth-authorization-server"):
        response = await client.get(path, headers={"authorization": "Bearer garbage"})
        assert response.status_code == 200, path


# --- revocation -----------------------------------------------------------------------------

async def test_a_revoked_clients_outstanding_token_fails_within_the_status_ttl(
    client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID
) -> None:
    credentials = await _secret_client(pool, org_id)
    token = await _token(client, credentials)
    assert (await _call(client, protected, token)).status_code == 200

    # As `peerbridge clients revoke` does it: another process, straight to the database.
    await revoke_client(pool, credentials[0])
    await asyncio.sleep(0.35)  # the per-process status cache TTL in this test's settings

    response = await _call(client, protected, token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    new = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                            auth=credentials)
    assert new.status_code == 401


async def test_a_deactivated_organizations_tokens_fail(
    client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID
) -> None:
    credentials = await _secret_client(pool, org_id)
    token = await _token(client, credentials)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE organizations SET active = false WHERE id = $1", org_id)
    await asyncio.sleep(0.35)
    assert (await _call(client, protected, token)).status_code == 401


# --- key rotation ---------------------------------------------------------------------------

def _kid(token: str) -> str:
    return str(jws.extract_compact(token.encode()).headers()["kid"])


async def test_key_rotation_old_tokens_work_until_expiry_new_ones_use_the_new_key(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID
) -> None:
    credentials = await _secret_client(pool, org_id)
    before = await _token(client, credentials)
    old_kid = _kid(before)

    # As `peerbridge keys rotate` does it from another process: its own KEK handle, same key.
    kek_key = kek.load(None, app.state.settings.data_dir)
    new_record, _ = await keys.rotate(pool, kek_key, timedelta(seconds=330))
    await asyncio.sleep(0.35)  # this process's key-ring refresh in the test settings

    after = await _token(client, credentials)
    assert _kid(after) == new_record.kid != old_kid
    assert (await _call(client, protected, before)).status_code == 200
    assert (await _call(client, protected, after)).status_code == 200
    published = {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert published == {old_kid, new_record.kid}

    await _runtime(app).keys.remove(old_kid)

    assert (await _call(client, protected, before)).status_code == 401
    assert (await _call(client, protected, after)).status_code == 200
    published = {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert published == {new_record.kid}


async def test_a_key_removed_by_another_process_stops_verifying_within_the_refresh(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, protected: str, org_id: UUID
) -> None:
    credentials = await _secret_client(pool, org_id)
    before = await _token(client, credentials)
    kek_key = kek.load(None, app.state.settings.data_dir)
    await keys.rotate(pool, kek_key, timedelta(seconds=330))
    async with pool.acquire() as conn:
        await SigningKeyRepository(conn).remove(_kid(before))
    await asyncio.sleep(0.35)
    assert (await _call(client, protected, before)).status_code == 401


async def test_rotation_prunes_keys_retired_longer_than_a_token_lives(
    app: Starlette, pool: asyncpg.Pool
) -> None:
    kek_key = kek.load(None, app.state.settings.data_dir)
    original = (await _runtime(app).keys.signer()).kid
    first, _ = await keys.rotate(pool, kek_key, timedelta(seconds=330))
    second, removed = await keys.rotate(pool, kek_key, timedelta(seconds=0))
    # The key retired just now still verifies the tokens it signed; older ones are gone.
    assert removed == [original]
    ring = await _runtime(app).keys.reload()
    assert set(ring.verifiers) == {first.kid, second.kid}


async def test_the_active_key_cannot_be_removed(app: Starlette) -> None:
    signer = await _runtime(app).keys.signer()
    with pytest.raises(Conflict):
        await _runtime(app).keys.remove(signer.kid)


# --- storage --------------------------------------------------------------------------------

async def test_signing_keys_are_sealed_at_rest_and_jwks_publishes_no_private_part(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    signer = await _runtime(app).keys.signer()
    private_numbers = signer.private.as_dict(private=True)
    async with pool.acquire() as conn:
        stored = await conn.fetchrow(
            "SELECT private_ciphertext, public_jwk::text AS public FROM signing_keys"
            " WHERE kid = $1", signer.kid)
    assert private_numbers["d"].encode() not in stored["private_ciphertext"]
    assert '"d"' not in stored["public"]
    document = (await client.get("/.well-known/jwks.json")).json()
    for key in document["keys"]:
        assert set(key) <= {"kty", "n", "e", "kid", "alg", "use"}
    kek_file = app.state.settings.data_dir / kek.KEK_FILE_NAME
    assert kek_file.stat().st_mode & 0o777 == 0o600


async def test_keys_sealed_under_another_kek_fail_loudly(
    app: Starlette, pool: asyncpg.Pool
) -> None:
    other = keys.SigningKeys(pool, kek.generate())
    with pytest.raises(kek.KeyEncryptionError, match="key-encryption key"):
        await other.reload()


# --- tenancy: the services refuse another organization's token ------------------------------

async def test_a_token_of_an_unrelated_organization_finds_no_referral_of_others(
    client: httpx.AsyncClient, network: Network, protected: str
) -> None:
    view = await referrals.create_referral(
        network.uow(), network.as_clinic,
        referrals.CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
            priority=Priority.ROUTINE,
            reason_codes=(Coding("http://snomed.info/sct", "461481000124109", "Peer support"),),
            reason_text=None,
        ),
    )
    path = f"/test/referrals/{view.referral.id}"
    stranger = await _secret_client(network.pool, network.stranger.id, ["system/*.cruds"])
    peer = await _secret_client(network.pool, network.peer.id, ["system/*.cruds"])
    narrow = await _secret_client(network.pool, network.peer.id, ["system/Patient.rs"])

    refused = await _call(client, path, await _token(client, stranger))
    allowed = await _call(client, path, await _token(client, peer))
    unscoped = await _call(client, path, await _token(client, narrow))

    # The stranger has no relationship with the patient: the referral does not exist for it.
    assert refused.status_code == 404
    assert allowed.status_code == 200
    assert unscoped.status_code == 403
    assert 'error="insufficient_scope"' in unscoped.headers["www-authenticate"]
    assert 'scope="user/ServiceRequest.rs"' in unscoped.headers["www-authenticate"]
