"""External issuer mode and client JWKS URLs: remote key sets over real HTTP, cached, refetched."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.auth.clients import create_client, revoke_client
from api.db.uow import PostgresUnitOfWork
from api.services.organizations import create_organization
from api.settings import Settings

ISSUER = "https://idp.example/realms/peerbridge"
AUDIENCE = "peerbridge-api"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class JWKSServer:
    """A key server on 127.0.0.1 whose document the test swaps; counts the fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                outer.hits += 1
                body = json.dumps(outer.document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def publish(self, *keys: RSAKey | ECKey) -> None:
        self.document = {"keys": [key.as_dict(private=False) for key in keys]}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    server = JWKSServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, jwks_server: JWKSServer) -> Settings:
    return Settings(
        database_url=database_url, data_dir=tmp_path, environment="development",
        external_issuer=ISSUER, external_audience=AUDIENCE, external_jwks_url=jwks_server.url,
        # Keycloak-style mapping: a nested organization claim, scopes as a list, typ JWT.
        external_organization_claim="peerbridge.org", external_scope_claim="scp",
        external_client_id_claim="azp", external_token_types="at+jwt,jwt",
        auth_jwks_min_refetch_s=0.5,
    )


async def _whoami(request: Request) -> JSONResponse:
    principal = request.state.principal
    if principal is None:
        return JSONResponse({"principal": None}, 401)
    return JSONResponse({"client_id": principal.client_id, "subject": principal.subject,
                         "organization_id": str(principal.organization_id),
                         "scopes": [str(scope) for scope in principal.scopes]})


@pytest.fixture
def protected(app: Starlette) -> str:
    app.router.routes.append(Route("/test/whoami", _whoami))
    return "/test/whoami"


@pytest.fixture
async def org_id(pool: asyncpg.Pool) -> UUID:
    org = await create_organization(PostgresUnitOfWork(pool), name=f"Org {secrets.token_hex(3)}",
                                    kind="peer_organization")
    return org.id


def _external_token(key: RSAKey, org: UUID | str, *, alg: str = "RS256",
                    **changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": [AUDIENCE, "account"], "sub": "service-account-partner",
        "azp": "partner-dashboard", "exp": now + 300, "iat": now, "jti": secrets.token_hex(8),
        "scp": ["user/HealthcareService.rs", "openid"], "peerbridge": {"org": str(org)},
    }
    claims.update(changes)
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"},
                      {k: v for k, v in claims.items() if v is not None}, key, algorithms=[alg])


async def _call(client: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    return await client.get(path, headers={"authorization": f"Bearer {token}"})


async def test_an_external_issuers_token_maps_to_a_principal(
    client: httpx.AsyncClient, protected: str, jwks_server: JWKSServer, org_id: UUID
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
    jwks_server.publish(key)

    response = await _call(client, protected, _external_token(key, org_id))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "client_id": "partner-dashboard",
        "subject": "service-account-partner",
        "organization_id": str(org_id),
        "scopes": ["user/HealthcareService.rs"],
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example/realms/peerbridge"},
        {"exp": 1},
        {"nbf": int(time.time()) + 3600},
        {"peerbridge": None},
        {"peerbridge": {"org": "not-a-uuid"}},
        {"peerbridge": {"org": "00000000-0000-0000-0000-000000000001"}},
        {"exp": None},
    ],
    ids=["aud", "iss", "expired", "nbf", "no org", "bad org", "unknown org", "no exp"],
)
async def test_bad_external_tokens_are_refused(
    client: httpx.AsyncClient, protected: str, jwks_server: JWKSServer, org_id: UUID,
    changes: dict[str, Any],
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
    jwks_server.publish(key)
    response = await _call(client, protected, _external_token(key, org_id, **changes))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_an_unknown_kid_refetches_once_and_then_is_rate_limited(
    client: httpx.AsyncClient, protected: str, jwks_server: JWKSServer, org_id: UUID
) -> None:
    old = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
    new = RSAKey.generate_key(2048, parameters={"kid": "idp-2"})
    jwks_server.publish(old)
    assert (await _call(client, protected, _external_token(old, org_id))).status_code == 200
    assert jwks_server.hits == 1
    assert (await _call(client, protected, _external_token(old, org_id))).status_code == 200
    assert jwks_server.hits == 1  # cached

    # The identity provider rotates; a forger floods us with made-up kids meanwhile.
    jwks_server.publish(old, new)
    await asyncio.sleep(0.55)
    assert (await _call(client, protected, _external_token(new, org_id))).status_code == 200
    assert jwks_server.hits == 2
    forger = RSAKey.generate_key(2048)
    forged = [
        _external_token(RSAKey.import_key(forger.as_dict(private=True), {"kid": f"made-up-{n}"}),
                        org_id)
        for n in range(50)
    ]
    started = time.monotonic()
    for token in forged:
        assert (await _call(client, protected, token)).status_code == 401
    elapsed = time.monotonic() - started
    # At most one refetch per 0.5 s (the test's auth_jwks_min_refetch_s), not one per request.
    assert jwks_server.hits - 2 <= int(elapsed / 0.5) + 1 < len(forged)


async def test_a_revoked_local_registration_also_stops_an_external_client(
    client: httpx.AsyncClient, protected: str, jwks_server: JWKSServer, org_id: UUID,
    pool: asyncpg.Pool,
) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
    jwks_server.publish(key)
    await create_client(pool, organization_id=org_id, name="Dashboard",
                        scopes=["user/HealthcareService.rs"], client_id="partner-dashboard")
    await revoke_client(pool, "partner-dashboard")
    response = await _call(client, protected, _external_token(key, org_id))
    assert response.status_code == 401


async def test_a_client_registered_with_a_jwks_url_authenticates_and_rotates_keys(
    client: httpx.AsyncClient, protected: str, jwks_server: JWKSServer, org_id: UUID,
    pool: asyncpg.Pool,
) -> None:
    first = ECKey.generate_key("P-384", parameters={"kid": "ehr-2025"})
    second = ECKey.generate_key("P-384", parameters={"kid": "ehr-2026"})
    jwks_server.publish(first)
    registered = await create_client(pool, organization_id=org_id, name="EHR",
                                     scopes=["system/Task.rs"], jwks_uri=jwks_server.url)
    client_id = registered.client.client_id
    token_url = (await client.get("/.well-known/smart-configuration")).json()["token_endpoint"]

    def assertion(key: ECKey) -> str:
        now = int(time.time())
        return jwt.encode({"alg": "ES384", "kid": key.kid, "typ": "JWT"},
                          {"iss": client_id, "sub": client_id, "aud": token_url,
                           "exp": now + 120, "jti": secrets.token_hex(8)},
                          key, algorithms=["ES384"])

    async def exchange(key: ECKey) -> httpx.Response:
        return await client.post(token_url, data={
            "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(key)})

    assert (await exchange(first)).status_code == 200
    jwks_server.publish(first, second)
    await asyncio.sleep(0.55)
    response = await exchange(second)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert (await _call(client, protected, token)).json()["client_id"] == client_id
