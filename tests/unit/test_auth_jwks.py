"""Remote JWK Sets: what is usable, TTL caching, rate-limited refetch on an unknown kid."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey, OctKey, RSAKey

from api.auth.jwks import JWKSError, RemoteJWKS, check_public_jwks, check_url, keys_by_kid

RSA = RSAKey.generate_key(2048, parameters={"kid": "r1"})
EC = ECKey.generate_key("P-384", parameters={"kid": "e1"})


def test_only_public_signing_keys_with_a_kid_are_used() -> None:
    document = {"keys": [
        RSA.as_dict(private=False),
        {**EC.as_dict(private=False), "use": "enc"},
        {**RSAKey.generate_key(2048).as_dict(private=False)},            # no kid
        {**RSAKey.generate_key(2048).as_dict(private=True), "kid": "p"},  # private member
        {**OctKey.generate_key(256).as_dict(), "kid": "hmac"},
        {"kty": "RSA", "kid": "broken", "n": "AQAB"},
        "not a key",
    ]}
    assert set(keys_by_kid(document)) == {"r1"}
    with pytest.raises(JWKSError):
        keys_by_kid([RSA.as_dict(private=False)])


def test_a_registered_jwks_must_be_public() -> None:
    assert check_public_jwks({"keys": [EC.as_dict(private=False)]})
    with pytest.raises(JWKSError, match="private key"):
        check_public_jwks({"keys": [EC.as_dict(private=True)]})
    with pytest.raises(JWKSError, match="private key"):  # a shared secret is no public key
        check_public_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]})
    without_kid = {k: v for k, v in EC.as_dict(private=False).items() if k != "kid"}
    with pytest.raises(JWKSError, match="no RSA or EC"):
        check_public_jwks({"keys": [without_kid]})


@pytest.mark.parametrize("url", ["https://idp.example/jwks", "http://127.0.0.1:8080/jwks",
                                 "http://localhost/jwks"])
def test_https_or_local_http_urls_are_allowed(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("url", ["http://idp.example/jwks", "file:///etc/passwd",
                                 "ftp://idp.example/jwks", "https:///nohost"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(JWKSError):
        check_url(url)


class FakeServer:
    def __init__(self) -> None:
        self.document: Any = {"keys": [RSA.as_dict(private=False)]}
        self.status = 200
        self.hits = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.hits += 1
        body = self.document if isinstance(self.document, bytes) else json.dumps(self.document)
        return httpx.Response(self.status, content=body)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def remote(server: FakeServer, clock: Clock) -> RemoteJWKS:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    return RemoteJWKS("https://idp.example/jwks", http, ttl=300, min_refetch=30, clock=clock)


async def test_keys_are_cached_for_the_ttl(server: FakeServer) -> None:
    clock = Clock()
    jwks = remote(server, clock)
    assert await jwks.key("r1") is not None
    clock.now += 299
    assert await jwks.key("r1") is not None
    assert server.hits == 1
    clock.now += 1
    assert await jwks.key("r1") is not None
    assert server.hits == 2


async def test_an_unknown_kid_refetches_at_most_once_per_interval(server: FakeServer) -> None:
    clock = Clock()
    jwks = remote(server, clock)
    await jwks.key("r1")
    for _ in range(100):
        assert await jwks.key("forged") is None
    assert server.hits == 1  # within min_refetch of the first fetch
    clock.now += 30
    server.document = {"keys": [RSA.as_dict(private=False), EC.as_dict(private=False)]}
    assert await jwks.key("e1") is not None
    for _ in range(100):
        await jwks.key("forged")
    assert server.hits == 2


async def test_a_failed_fetch_keeps_the_last_good_keys(server: FakeServer) -> None:
    clock = Clock()
    jwks = remote(server, clock)
    await jwks.key("r1")
    server.status = 503
    clock.now += 301
    assert await jwks.key("r1") is not None
    server.status = 200
    server.document = b"{not json"
    clock.now += 301
    assert await jwks.key("r1") is not None


async def test_an_oversized_document_is_not_used(server: FakeServer) -> None:
    server.document = b"{" + b" " * 70_000 + b"}"
    jwks = remote(server, Clock())
    assert await jwks.key("r1") is None
