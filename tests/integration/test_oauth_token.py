"""The token endpoint as a standard SMART Backend Services client sees it (joserfc + httpx only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import asyncpg
import httpx
import pytest
from joserfc import jws, jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth.clients import create_client, revoke_client
from api.db.uow import PostgresUnitOfWork
from api.domain.organizations import Organization
from api.services.organizations import create_organization

ALLOWED = ["system/ServiceRequest.rs", "system/Task.cruds"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def _whoami(request: Request) -> JSONResponse:
    """A stand-in protected door: what the middleware put on the request."""
    principal = request.state.principal
    if principal is None:
        return JSONResponse({"principal": None}, 401)
    return JSONResponse(
        {
            "client_id": principal.client_id,
            "organization_id": str(principal.organization_id),
            "scopes": [str(scope) for scope in principal.scopes],
            "subject": principal.subject,
        }
    )


@pytest.fixture
def protected(app: Starlette) -> str:
    app.router.routes.append(Route("/test/whoami", _whoami))
    return "/test/whoami"


async def _organization(pool: asyncpg.Pool, kind: str = "clinic") -> Organization:
    return await create_organization(
        PostgresUnitOfWork(pool), name=f"Org {secrets.token_hex(4)}", kind=kind
    )


class SmartClient:
    """Nothing but the standard: discovery, an RFC 7523 assertion, a form POST."""

    def __init__(self, http: httpx.AsyncClient, client_id: str, key: RSAKey | ECKey, alg: str):
        self.http = http
        self.client_id = client_id
        self.key = key
        self.alg = alg

    async def token_url(self) -> str:
        config = (await self.http.get("/.well-known/smart-configuration")).json()
        return str(config["token_endpoint"])

    def assertion(self, token_url: str, *, header: dict[str, Any] | None = None,
                  **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.client_id, "sub": self.client_id, "aud": token_url,
                "exp": now + 240, "iat": now, "jti": secrets.token_urlsafe(12)}
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        head = {"alg": self.alg, "kid": self.key.kid, "typ": "JWT", **(header or {})}
        head = {name: value for name, value in head.items() if value is not None}
        return jwt.encode(head, body, self.key, algorithms=[self.alg])

    async def request_token(self, assertion: str | None = None,
                            scope: str | None = None) -> httpx.Response:
        url = await self.token_url()
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(url),
        }
        if scope is not None:
            form["scope"] = scope
        return await self.http.post(url, data=form)


async def _smart_client(pool: asyncpg.Pool, http: httpx.AsyncClient, alg: str,
                        scopes: list[str] | None = None,
                        organization: Organization | None = None) -> SmartClient:
    key: RSAKey | ECKey
    if alg == "RS384":
        key = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    else:
        key = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
    org = organization or await _organization(pool)
    registered = await create_client(
        pool, organization_id=org.id, name=f"EHR {alg}", scopes=scopes or ALLOWED,
        jwks={"keys": [key.as_dict(private=False)]},
    )
    return SmartClient(http, registered.client.client_id, key, alg)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_standard_client_gets_a_token_the_api_accepts(
    pool: asyncpg.Pool, client: httpx.AsyncClient, protected: str, alg: str
) -> None:
    smart = await _smart_client(pool, client, alg)

    response = await smart.request_token(scope="system/ServiceRequest.rs")

    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] <= 300
    assert body["scope"] == "system/ServiceRequest.rs"
    assert "refresh_token" not in body
    header = jws.extract_compact(body["access_token"].encode()).headers()
    assert header["typ"] == "at+jwt"
    who = await client.get(protected, headers={"authorization": f"Bearer {body['access_token']}"})
    assert who.status_code == 200
    assert who.json()["client_id"] == smart.client_id
    assert who.json()["subject"] == smart.client_id
    assert who.json()["scopes"] == ["system/ServiceRequest.rs"]


async def test_client_secret_basic_gets_a_token_the_api_accepts(
    pool: asyncpg.Pool, client: httpx.AsyncClient, protected: str
) -> None:
    org = await _organization(pool, "peer_organization")
    registered = await create_client(pool, organization_id=org.id, name="Partner app",
                                     scopes=["user/HealthcareService.rs"])
    assert registered.secret is not None
    token_url = (await client.get("/.well-known/smart-configuration")).json()["token_endpoint"]

    response = await client.post(
        token_url, data={"grant_type": "client_credentials"},
        auth=(registered.client.client_id, registered.secret),
    )

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    who = await client.get(protected, headers={"authorization": f"Bearer {token}"})
    assert who.json() == {
        "client_id": registered.client.client_id,
        "organization_id": str(org.id),
        "scopes": ["user/HealthcareService.rs"],
        "subject": registered.client.client_id,
    }


async def test_no_scope_requested_grants_the_default_set(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    smart = await _smart_client(pool, client, "RS384")
    response = await smart.request_token()
    assert response.json()["scope"] == " ".join(ALLOWED)


async def test_requested_scopes_are_narrowed_to_the_registration(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    smart = await _smart_client(pool, client, "ES384")
    response = await smart.request_token(scope="system/*.rs system/Task.read")
    assert response.status_code == 200
    assert response.json()["scope"] == "system/ServiceRequest.rs system/Task.rs"


async def test_a_scope_the_client_was_never_allowed_is_invalid_scope(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    smart = await _smart_client(pool, client, "RS384")
    for scope in ("system/Patient.r", "system/ServiceRequest.rs system/Consent.c", "openid",
                  "launch/patient", "system/Foo.rs", "system/Task.rsu"):
        response = await smart.request_token(scope=scope)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"
        assert "access_token" not in response.json()


async def test_scopes_meaningless_to_a_backend_service_are_narrowed_away(
    pool: asyncpg.Pool, client: httpx.AsyncClient, protected: str
) -> None:
    smart = await _smart_client(pool, client, "ES384", scopes=["system/*.rs"])
    response = await smart.request_token(
        scope="launch/patient openid fhirUser system/Foo.rs system/Task.rs offline_access"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "system/Task.rs"
    who = await client.get(protected, headers={"authorization": f"Bearer {body['access_token']}"})
    assert who.json()["scopes"] == ["system/Task.rs"]


async def test_the_refused_scope_is_named_without_control_characters(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    smart = await _smart_client(pool, client, "RS384")
    response = await smart.request_token(scope='system/Consent.r?x="\\' + "\x01" + "a" * 300)
    assert response.json()["error"] == "invalid_scope"
    description = response.json()["error_description"]
    assert description.startswith("scope not allowed for this client: system/Consent.r?x=")
    assert len(description) < 150
    assert all(" " <= c <= "~" and c not in '"\\' for c in description)


# --- refused assertions: (description, header overrides, claim overrides) -------------------

def _forged(smart: SmartClient, token_url: str, case: str) -> str:
    now = int(time.time())
    if case == "alg=none":
        header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"rsa-1","typ":"JWT"}').rstrip(b"=")
        claims = (f'{{"iss":"{smart.client_id}","sub":"{smart.client_id}","aud":"{token_url}",'
                  f'"exp":{now + 60},"jti":"{secrets.token_hex(8)}"}}')
        payload = base64.urlsafe_b64encode(claims.encode()).rstrip(b"=")
        return f"{header.decode()}.{payload.decode()}."
    if case == "HS256 with the public key":
        # Built by hand: joserfc itself refuses to use a public key as an HMAC secret.
        return _hs256(smart.key.as_pem(private=False), {"alg": "HS256", "kid": smart.key.kid},
                      {"iss": smart.client_id, "sub": smart.client_id, "aud": token_url,
                       "exp": now + 60, "jti": secrets.token_hex(8)})
    raise AssertionError(case)


def _hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + b64(signature)).decode()


_REFUSALS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("expired", {}, {"exp": -120}),
    ("future nbf", {}, {"nbf": 600}),
    ("future iat", {}, {"iat": 600}),
    ("exp more than 5 minutes ahead", {}, {"exp": 600}),
    ("wrong aud", {}, {"aud": "https://elsewhere.example/oauth/token"}),
    ("wrong iss", {}, {"iss": "someone-else"}),
    ("missing exp", {}, {"exp": None}),
    ("missing jti", {}, {"jti": None}),
    ("unknown kid", {"kid": "not-registered"}, {}),
    ("missing kid", {"kid": None}, {}),
    ("wrong typ", {"typ": "at+jwt"}, {}),
    ("embedded jwk", {"jwk": "PUBLIC"}, {}),
    ("jku header", {"jku": "https://attacker.example/jwks.json"}, {}),
]


@pytest.mark.parametrize(("case", "header", "claims"), _REFUSALS, ids=[r[0] for r in _REFUSALS])
async def test_bad_assertions_are_refused_and_no_token_is_issued(
    pool: asyncpg.Pool, client: httpx.AsyncClient, case: str, header: dict[str, Any],
    claims: dict[str, Any]
) -> None:
    smart = await _smart_client(pool, client, "RS384")
    token_url = await smart.token_url()
    now = int(time.time())
    claims = {name: now + value if name in ("exp", "nbf", "iat") and value is not None else value
              for name, value in claims.items()}
    if header.get("jwk") == "PUBLIC":
        header = {"jwk": smart.key.as_dict(private=False)}

    response = await smart.request_token(smart.assertion(token_url, header=header, **claims))

    assert response.status_code == 400, case
    assert response.json()["error"] == "invalid_client", case
    assert "access_token" not in response.json()


@pytest.mark.parametrize("case", ["alg=none", "HS256 with the public key"])
async def test_unsigned_and_hmac_assertions_are_refused(
    pool: asyncpg.Pool, client: httpx.AsyncClient, case: str
) -> None:
    smart = await _smart_client(pool, client, "RS384")
    token_url = await smart.token_url()
    response = await smart.request_token(_forged(smart, token_url, case))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


async def test_a_replayed_assertion_is_refused(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    smart = await _smart_client(pool, client, "ES384")
    assertion = smart.assertion(await smart.token_url())

    first = await smart.request_token(assertion)
    replay = await smart.request_token(assertion)

    assert first.status_code == 200
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_client"
    assert "jti" in replay.json()["error_description"]


async def test_an_assertion_signed_by_another_clients_key_is_refused(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    victim = await _smart_client(pool, client, "RS384")
    attacker = await _smart_client(pool, client, "RS384")
    # Same kid, the attacker's key, the victim's client id.
    forged = SmartClient(client, victim.client_id, attacker.key, "RS384")
    response = await forged.request_token()
    assert response.json()["error"] == "invalid_client"


async def test_a_revoked_client_gets_no_token(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    smart = await _smart_client(pool, client, "RS384")
    await revoke_client(pool, smart.client_id)
    response = await smart.request_token()
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


async def test_a_wrong_or_unknown_secret_is_401_with_a_basic_challenge(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    org = await _organization(pool)
    registered = await create_client(pool, organization_id=org.id, name="Partner",
                                     scopes=["user/Organization.rs"])
    for credentials in ((registered.client.client_id, "wrong"), ("no-such-client", "secret")):
        response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                     auth=credentials)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_revoked_secret_client_gets_no_token(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    org = await _organization(pool)
    registered = await create_client(pool, organization_id=org.id, name="Partner",
                                     scopes=["user/Organization.rs"])
    assert registered.secret is not None
    await revoke_client(pool, registered.client.client_id)
    response = await client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 auth=(registered.client.client_id, registered.secret))
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials"}, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"},
         "invalid_client"),
        ({"grant_type": "client_credentials", "client_assertion_type": "urn:other",
          "client_assertion": "a.b.c"}, "invalid_client"),
        ({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
          "client_assertion": "not-a-jwt"}, "invalid_client"),
    ],
)
async def test_malformed_token_requests_get_rfc6749_errors(
    client: httpx.AsyncClient, form: dict[str, str], error: str
) -> None:
    response = await client.post("/oauth/token", data=form)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_repeated_parameters_and_json_bodies_are_invalid_requests(
    client: httpx.AsyncClient,
) -> None:
    repeated = await client.post(
        "/oauth/token", content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    as_json = await client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert repeated.json()["error"] == "invalid_request"
    assert as_json.json()["error"] == "invalid_request"


async def test_a_client_id_parameter_must_name_the_authenticated_client(
    pool: asyncpg.Pool, client: httpx.AsyncClient
) -> None:
    org = await _organization(pool)
    registered = await create_client(pool, organization_id=org.id, name="Partner",
                                     scopes=["user/Organization.rs"])
    assert registered.secret is not None
    response = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "someone-else"},
        auth=(registered.client.client_id, registered.secret),
    )
    assert response.json()["error"] == "invalid_request"
    smart = await _smart_client(pool, client, "ES384")
    token_url = await smart.token_url()
    response = await client.post(token_url, data={
        "grant_type": "client_credentials", "client_id": "someone-else",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": smart.assertion(token_url)})
    assert response.json()["error"] == "invalid_client"
