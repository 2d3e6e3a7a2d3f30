"""Bearer token → `Principal`: our RFC 9068 tokens and the external issuer's, plus revocation."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

import asyncpg

from api.auth import jws, tokens
from api.auth.config import AuthConfig
from api.auth.external import ExternalTokens
from api.auth.jws import TokenRejected, UnverifiedJWT
from api.auth.keys import SigningKeys
from api.db.clients import ClientRepository, ClientStatus
from api.domain.principal import Principal
from api.domain.scopes import Scope, parse_scopes

K = TypeVar("K")
V = TypeVar("V")


class StatusCache:
    """Per-process cache of client and organization status, trusted for `ttl` seconds.

    This bounds how long a revoked client's outstanding tokens keep working in each process
    (5 s by default), while a busy client costs one indexed query per `ttl`, not per request.
    """

    def __init__(self, pool: asyncpg.Pool, ttl: float, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pool = pool
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._clients: dict[str, tuple[float, ClientStatus | None]] = {}
        self._orgs: dict[UUID, tuple[float, bool]] = {}

    async def client(self, client_id: str) -> ClientStatus | None:
        now = self._clock()
        hit = self._clients.get(client_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        async with self._pool.acquire() as conn:
            status = await ClientRepository(conn).status(client_id)
        _put(self._clients, client_id, (now, status), self._max)
        return status

    async def organization_active(self, organization_id: UUID) -> bool:
        now = self._clock()
        hit = self._orgs.get(organization_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        async with self._pool.acquire() as conn:
            active = await ClientRepository(conn).organization_active(organization_id)
        _put(self._orgs, organization_id, (now, active), self._max)
        return active

    def forget(self, client_id: str) -> None:
        """Drop a cached status (this process revoked the client: no need to wait for the TTL)."""
        self._clients.pop(client_id, None)


def _put(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    cache.pop(key, None)
    if len(cache) >= limit:
        # Insertion order: the oldest entry goes first.
        cache.pop(next(iter(cache)))
    cache[key] = value


@dataclass(frozen=True)
class _Verified:
    token: tokens.AccessToken
    scopes: tuple[Scope, ...]


class Authenticator:
    """Validates a bearer token and builds the Principal the services check.

    Our own tokens, once fully verified, are remembered by SHA-256 digest until they expire:
    a client reuses its token for minutes, and a repeat costs a hash and a dict lookup instead
    of an RSA verification. A hit still checks expiry, that the signing key is still in the
    ring (so a removed key's tokens fail) and the client's status (so revocation holds).
    """

    def __init__(
        self,
        config: AuthConfig,
        keys: SigningKeys,
        statuses: StatusCache,
        external: ExternalTokens | None = None,
        *,
        clock: Callable[[], float] = time.time,
        verified_cache_size: int = 10_000,
    ) -> None:
        self._config = config
        self._keys = keys
        self._statuses = statuses
        self._external = external
        self._clock = clock
        self._verified: dict[bytes, _Verified] = {}
        self._verified_max = verified_cache_size

    async def authenticate(
        self, token: str, *, source_ip: str | None = None, trace_id: str | None = None
    ) -> Principal:
        """The caller's Principal; raises TokenRejected with a loggable reason."""
        now = int(self._clock())
        digest = hashlib.sha256(token.encode("latin-1", "replace")).digest()
        verified = await self._remembered(digest, now)
        if verified is None:
            # Route by the (unverified) issuer; each path then verifies with its own keys only.
            jwt = jws.parse(token)
            issuer = jwt.claims.get("iss")
            if self._external is not None and issuer == self._external.issuer.issuer:
                return await self._foreign(jwt, now, source_ip, trace_id)
            if issuer != self._config.issuer:
                raise TokenRejected("wrong iss")
            verified = await self._verify_own(jwt, now)
            _put(self._verified, digest, verified, self._verified_max)
        return await self._principal(verified, source_ip, trace_id)

    async def _remembered(self, digest: bytes, now: int) -> _Verified | None:
        verified = self._verified.get(digest)
        if verified is None:
            return None
        if verified.token.expires_at <= now - self._config.leeway_seconds:
            self._verified.pop(digest, None)
            raise TokenRejected("expired")
        if await self._keys.verifier(verified.token.kid) is None:
            self._verified.pop(digest, None)
            raise TokenRejected("unknown kid")
        return verified

    async def _verify_own(self, jwt: UnverifiedJWT, now: int) -> _Verified:
        claims = await tokens.verify(
            jwt,
            self._keys.verifier,
            issuer=self._config.issuer,
            audience=self._config.audience,
            now=now,
            leeway=self._config.leeway_seconds,
        )
        return _Verified(claims, parse_scopes(claims.scope.split()))

    async def _principal(
        self, verified: _Verified, source_ip: str | None, trace_id: str | None
    ) -> Principal:
        claims = verified.token
        status = await self._statuses.client(claims.client_id)
        if status is None or not status.active:
            raise TokenRejected("client revoked")
        if str(status.organization_id) != claims.organization:
            raise TokenRejected("organization mismatch")
        return Principal(
            client_id=claims.client_id,
            organization_id=status.organization_id,
            scopes=verified.scopes,
            subject=claims.subject,
            token_id=claims.jti,
            source_ip=source_ip,
            trace_id=trace_id,
        )

    async def _foreign(
        self, jwt: UnverifiedJWT, now: int, source_ip: str | None, trace_id: str | None
    ) -> Principal:
        assert self._external is not None
        claims = await self._external.verify(jwt, now=now, leeway=self._config.leeway_seconds)
        if not await self._statuses.organization_active(claims.organization_id):
            raise TokenRejected("organization unknown or inactive")
        # An external client also registered here can be revoked here.
        status = await self._statuses.client(claims.client_id)
        if status is not None and not status.active:
            raise TokenRejected("client revoked")
        return Principal(
            client_id=claims.client_id,
            organization_id=claims.organization_id,
            scopes=parse_scopes(claims.scopes),
            subject=claims.subject,
            token_id=claims.jti,
            source_ip=source_ip,
            trace_id=trace_id,
        )
