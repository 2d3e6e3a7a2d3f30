"""`POST /oauth/token`: client_credentials (RFC 6749 4.4) for SMART Backend Services clients.

Client authentication by JWT assertion (RFC 7523 2.2, SMART Backend Services) or by
`client_secret_basic` (RFC 6749 2.3.1). Written against the RFCs rather than authlib's
AuthorizationServer: that server is synchronous (our registry is asyncpg), its RFC 7523 code
sits on the deprecated `authlib.jose`, and it has none of SMART's assertion rules (kid, exp at
most 5 minutes ahead, jti replay).
https://hl7.org/fhir/smart-app-launch/backend-services.html
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

import asyncpg
from joserfc.jwk import Key

from api.auth import assertions, client_secrets, grants, tokens
from api.auth.config import AuthConfig
from api.auth.errors import invalid_client, invalid_request, invalid_scope, unsupported_grant_type
from api.auth.jwks import JWKSCache, keys_by_kid
from api.auth.jws import TokenRejected
from api.auth.keys import SigningKeys
from api.db.clients import AssertionReplayStore, ClientRecord, ClientRepository
from api.domain.scopes import parse_scopes

log = logging.getLogger(__name__)

_PURGE_EVERY_SECONDS = 60.0
# scrypt checks run in threads; cap them so a flood of bad secrets cannot take every worker
# thread (asyncio's default executor also resolves host names).
_CONCURRENT_SECRET_CHECKS = 2


def loggable(text: str | None, limit: int = 64) -> str:
    """An unverified identifier as it may appear in a log line: printable and short."""
    if text is None:
        return "-"
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


@dataclass(frozen=True)
class TokenResponse:
    """RFC 6749 5.1 successful response; no refresh token (SMART Backend Services)."""

    access_token: str
    expires_in: int
    scope: str
    token_type: str = "Bearer"

    def body(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "token_type": self.token_type,
                "expires_in": self.expires_in, "scope": self.scope}


class TokenEndpoint:
    """Authenticates the client, narrows the scopes and mints an RFC 9068 access token."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        config: AuthConfig,
        keys: SigningKeys,
        client_jwks: JWKSCache,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pool = pool
        self._config = config
        self._keys = keys
        self._client_jwks = client_jwks
        self._clock = clock
        self._last_purge = 0.0
        self._secret_checks = asyncio.Semaphore(_CONCURRENT_SECRET_CHECKS)

    async def issue(self, params: Mapping[str, str], authorization: str | None) -> TokenResponse:
        grant_type = params.get("grant_type")
        if not grant_type:
            raise invalid_request("grant_type is required")
        if grant_type != "client_credentials":
            raise unsupported_grant_type("only client_credentials is supported")
        client = await self._authenticate(params, authorization)
        try:
            request = grants.parse_request(params.get("scope"))
            granted = grants.grant(
                request,
                parse_scopes(client.allowed_scopes),
                parse_scopes(client.default_scopes),
            )
        except grants.ScopeRefused as refused:
            log.info("token refused to %s: invalid_scope", client.client_id)
            raise invalid_scope(refused.scope) from None
        if request.set_aside:
            log.info("scopes set aside for %s: %s", client.client_id,
                     loggable(" ".join(request.set_aside), 200))
        token, claims = tokens.mint(
            await self._keys.signer(),
            issuer=self._config.issuer,
            audience=self._config.audience,
            client_id=client.client_id,
            organization_id=client.organization_id,
            scopes=granted,
            now=int(self._clock()),
            lifetime=self._config.access_token_lifetime,
        )
        log.info("token issued to %s: %s", client.client_id, claims.scope)
        return TokenResponse(token, self._config.access_token_lifetime, claims.scope)

    async def _authenticate(
        self, params: Mapping[str, str], authorization: str | None
    ) -> ClientRecord:
        assertion_type = params.get("client_assertion_type")
        assertion = params.get("client_assertion")
        basic = authorization is not None and authorization[:6].lower() == "basic "
        if "client_secret" in params:
            # client_secret_post would put the secret in bodies that proxies log.
            raise invalid_client("client_secret_post is not supported; use HTTP Basic")
        if (assertion_type or assertion) and basic:
            raise invalid_request("use exactly one client authentication method")
        if assertion_type or assertion:
            if assertion_type != assertions.CLIENT_ASSERTION_TYPE or not assertion:
                raise invalid_client("client_assertion_type must be jwt-bearer, with an assertion")
            return await self._by_assertion(assertion, params.get("client_id"))
        if basic and authorization is not None:
            client = await self._by_secret(authorization[6:].strip())
            if params.get("client_id", client.client_id) != client.client_id:
                raise invalid_request("client_id differs from the authenticated client")
            return client
        raise invalid_client("client authentication is required", basic=True)

    async def _by_assertion(self, assertion: str, client_id_param: str | None) -> ClientRecord:
        claimed = None
        try:
            jwt, claimed = assertions.peek(assertion)
            if client_id_param is not None and client_id_param != claimed:
                raise TokenRejected("client_id differs from the assertion's iss")
            async with self._pool.acquire() as conn:
                client = await ClientRepository(conn).get(claimed)
            if client is None or client.auth_method != "private_key_jwt":
                raise TokenRejected("unknown client")
            verified = await assertions.verify(
                jwt,
                client.client_id,
                lambda kid: self._client_key(client, kid),
                token_url=self._config.token_url,
                now=int(self._clock()),
                leeway=self._config.leeway_seconds,
            )
            await self._check_active(client)
            await self._remember(verified)
        except TokenRejected as rejected:
            # The claimed id helps operators; the assertion itself is never logged.
            log.info("client assertion refused (%s), claimed client %s", rejected.reason,
                     loggable(claimed))
            raise invalid_client(f"client assertion refused: {rejected.reason}") from None
        return client

    async def _client_key(self, client: ClientRecord, kid: str) -> Key | None:
        if client.jwks is not None:
            return keys_by_kid(client.jwks).get(kid)
        if client.jwks_uri is not None:
            return await self._client_jwks.get(client.jwks_uri).key(kid)
        return None

    async def _check_active(self, client: ClientRecord) -> None:
        async with self._pool.acquire() as conn:
            status = await ClientRepository(conn).status(client.client_id)
        if status is None or not status.active:
            raise TokenRejected("client is not active")

    async def _remember(self, verified: assertions.VerifiedAssertion) -> None:
        # Keep the jti as long as the assertion could still pass the exp check (leeway included).
        expires = datetime.fromtimestamp(verified.expires_at + self._config.leeway_seconds, UTC)
        async with self._pool.acquire() as conn:
            store = AssertionReplayStore(conn)
            if not await store.remember(verified.client_id, verified.jti, expires):
                raise TokenRejected("assertion jti already used")
            now = self._clock()
            if now - self._last_purge >= _PURGE_EVERY_SECONDS:
                self._last_purge = now
                await store.purge_expired()

    async def _by_secret(self, credentials: str) -> ClientRecord:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
            raw_id, separator, raw_secret = decoded.partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise invalid_client("malformed Basic credentials", basic=True) from None
        # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
        if not separator or not client_id or not secret:
            raise invalid_client("malformed Basic credentials", basic=True)
        async with self._pool.acquire() as conn:
            client = await ClientRepository(conn).get(client_id)
            status = await ClientRepository(conn).status(client_id)
        async with self._secret_checks:
            if client is None or client.secret_hash is None:
                # Same work as a real check, so response time does not reveal which ids exist.
                await asyncio.to_thread(client_secrets.burn_time, secret)
                ok = False
            else:
                ok = await asyncio.to_thread(
                    client_secrets.verify_secret, secret, client.secret_hash
                )
        if client is None or not ok or status is None or not status.active:
            log.info("client secret refused, claimed client %s", loggable(client_id))
            raise invalid_client("unknown client, wrong secret, or inactive client", basic=True)
        return client
