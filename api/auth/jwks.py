"""Remote JWK Sets (RFC 7517 5): fetched over HTTPS, cached with a TTL, refetched on unknown kid."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey, import_key

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 64 * 1024
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JWKSError(Exception):
    """A JWK Set that cannot be used: unreachable, malformed, or carrying private keys."""


def check_url(url: str) -> None:
    """Only HTTPS, except plain HTTP to this machine (local development and tests)."""
    parts = urlsplit(url)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and local)):
        raise JWKSError("a JWKS URL must use https")


def keys_by_kid(document: Any) -> dict[str, Key]:
    """The usable signing keys of a JWK Set document, by kid.

    Keys without a kid, meant for encryption, of a type other than RSA/EC, or holding private
    members are skipped; a document that is not a JWK Set is refused.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JWKSError("not a JWK Set")
    found: dict[str, Key] = {}
    for member in document["keys"]:
        if not isinstance(member, Mapping):
            continue
        kid = member.get("kid")
        if not isinstance(kid, str) or not kid or member.get("use", "sig") != "sig":
            continue
        if _PRIVATE_MEMBERS & member.keys() or member.get("kty") not in ("RSA", "EC"):
            continue
        try:
            key = import_key(dict(member))
        except (JoseError, ValueError, TypeError):
            continue
        if isinstance(key, RSAKey | ECKey):
            found[kid] = key
    return found


def check_public_jwks(document: Any) -> dict[str, Any]:
    """Validate a JWK Set a client registers: public RSA/EC signing keys only, each with a kid."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JWKSError("not a JWK Set")
    for member in document["keys"]:
        if isinstance(member, Mapping) and _PRIVATE_MEMBERS & member.keys():
            raise JWKSError("the JWK Set holds a private key: register only the public part")
    usable = keys_by_kid(document)
    if not usable:
        raise JWKSError("the JWK Set has no RSA or EC signing key with a kid")
    return {"keys": [dict(member) for member in document["keys"]]}


class RemoteJWKS:
    """One JWKS URL: keys cached for `ttl` seconds; an unknown kid refetches at most once per
    `min_refetch` seconds, so forged kids cannot make us hammer the key server."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        ttl: float = 300.0,
        min_refetch: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_url(url)
        self.url = url
        self._http = http
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Key | None:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            await self._refresh(self._fetched_at)
        elif kid not in self._keys and now - self._fetched_at >= self._min_refetch:
            await self._refresh(self._fetched_at)
        return self._keys.get(kid)

    async def _refresh(self, seen: float | None) -> None:
        async with self._lock:
            if self._fetched_at != seen:
                return  # another task refreshed while we waited
            try:
                self._keys = await self._fetch()
            except JWKSError as error:
                # Keep the last good keys: an outage of the key server should not log everyone out.
                log.warning("JWKS fetch from %s failed (%s)", self.url, error)
            self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str, Key]:
        try:
            async with self._http.stream("GET", self.url, timeout=5.0) as response:
                if response.status_code != 200:
                    raise JWKSError(f"HTTP {response.status_code}")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise JWKSError("JWKS document too large")
        except httpx.HTTPError as error:
            raise JWKSError(type(error).__name__) from None
        try:
            return keys_by_kid(json.loads(body))
        except ValueError:
            raise JWKSError("JWKS document is not JSON") from None


class JWKSCache:
    """RemoteJWKS per URL (client `jwks_uri`s), bounded so registrations cannot grow it forever."""

    def __init__(self, http: httpx.AsyncClient, *, ttl: float, min_refetch: float,
                 max_entries: int = 1000) -> None:
        self._http = http
        self._ttl = ttl
        self._min_refetch = min_refetch
        self._max = max_entries
        self._entries: dict[str, RemoteJWKS] = {}

    def get(self, url: str) -> RemoteJWKS:
        entry = self._entries.get(url)
        if entry is None:
            if len(self._entries) >= self._max:
                self._entries.pop(next(iter(self._entries)))
            entry = RemoteJWKS(url, self._http, ttl=self._ttl, min_refetch=self._min_refetch)
            self._entries[url] = entry
        return entry
