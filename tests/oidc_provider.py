"""A real OpenID Connect provider on 127.0.0.1 for the console's single sign-on tests: discovery,
JWKS, an authorization endpoint that signs in whoever the test says and redirects back with a
code, and a token endpoint that checks the client secret, the redirect URI and the PKCE
verifier before it answers with an ID token signed (joserfc, RS256) by its RSA key. A test can
tamper with the next ID token (another audience, nonce or signing key) to see it refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "peerbridge-console"
CLIENT_SECRET = "provider-issued-client-secret"


@dataclass
class Grant:
    claims: dict[str, Any]
    redirect_uri: str
    code_challenge: str
    nonce: str | None


@dataclass
class Provider:
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "idp-1"}))
    # Who signs in at the authorization endpoint next: the ID token's own claims.
    person: dict[str, Any] = field(default_factory=dict)
    # Claims forced into the next ID tokens (e.g. another `aud` or `nonce`).
    tamper: dict[str, Any] = field(default_factory=dict)
    # Sign ID tokens with this key instead (same `kid`: a forged signature).
    forger: RSAKey | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    codes: list[str] = field(default_factory=list)  # every code handed out
    tokens: list[str] = field(default_factory=list)  # every ID and access token handed out
    authorize_requests: list[dict[str, str]] = field(default_factory=list)

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.authorize_requests.append(query)
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, 400)
        code = secrets.token_urlsafe(24)
        self.codes.append(code)
        self.grants[code] = Grant(
            dict(self.person),
            query["redirect_uri"],
            query.get("code_challenge", ""),
            query.get("nonce"),
        )
        back = {"code": code, "state": query.get("state", "")}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", 302)

    async def token(self, request: Request) -> Response:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return JSONResponse({"error": "invalid_client"}, 401)
        form = await request.form()
        grant = self.grants.pop(str(form.get("code")), None)
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, 400)
        verifier = str(form.get("code_verifier", ""))
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        if not grant.code_challenge or challenge != grant.code_challenge:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": secrets.token_hex(8),
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            **({"nonce": grant.nonce} if grant.nonce else {}),
            **grant.claims,
            **self.tamper,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "idp-1"}, claims, self.forger or self.key)
        access_token = secrets.token_urlsafe(24)
        self.tokens += [id_token, access_token]
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }
        )


@asynccontextmanager
async def running_provider() -> AsyncIterator[Provider]:
    provider = Provider()
    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", provider.discovery),
            Route("/jwks", provider.jwks),
            Route("/authorize", provider.authorize),
            Route("/token", provider.token, methods=["POST"]),
        ]
    )
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    provider.issuer = f"http://127.0.0.1:{listening.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield provider
    finally:
        server.should_exit = True
        await task
        listening.close()
