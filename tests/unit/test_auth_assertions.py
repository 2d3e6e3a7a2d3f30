"""SMART Backend Services client assertions (RFC 7523 3), checked with in-memory keys only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import pytest
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, Key, RSAKey

from api.auth import assertions
from api.auth.jws import TokenRejected

TOKEN_URL = "https://peerbridge.example/oauth/token"
CLIENT = "ehr-interface-01"
NOW = 1_800_000_000
RSA = RSAKey.generate_key(2048, parameters={"kid": "rsa"})
EC = ECKey.generate_key("P-384", parameters={"kid": "ec"})
EC256 = ECKey.generate_key("P-256", parameters={"kid": "ec256"})
with warnings.catch_warnings():
    # joserfc rightly warns about a 1024-bit key: this one exists to be refused.
    warnings.simplefilter("ignore", SecurityWarning)
    SMALL_RSA = RSAKey.generate_key(1024, parameters={"kid": "small"})
KEYS: dict[str, Key] = {"rsa": RSA, "ec": EC, "ec256": EC256, "small": SMALL_RSA}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make(key: Key = RSA, *, header: dict[str, Any] | None = None, **claims: Any) -> str:
    alg = "RS384" if isinstance(key, RSAKey) else "ES384"
    body: dict[str, Any] = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 240,
                            "iat": NOW, "jti": "jti-1"}
    body.update(claims)
    head = {"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}
    return jwt.encode({k: v for k, v in head.items() if v is not None},
                      {k: v for k, v in body.items() if v is not None}, key,
                      algorithms=[head["alg"]] if head.get("alg") else None)


def raw(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}." \
           f"{_b64(signature)}"


async def check(assertion: str, now: int = NOW) -> assertions.VerifiedAssertion:
    jwt_, client_id = assertions.peek(assertion)

    async def find(kid: str) -> Key | None:
        return KEYS.get(kid)

    return await assertions.verify(jwt_, client_id, find, token_url=TOKEN_URL, now=now,
                                   leeway=30)


@pytest.mark.parametrize("key", [RSA, EC], ids=["RS384", "ES384"])
async def test_a_good_assertion_verifies(key: Key) -> None:
    verified = await check(make(key))
    assert verified == assertions.VerifiedAssertion(CLIENT, "jti-1", NOW + 240)


async def test_a_missing_typ_and_an_audience_list_are_accepted() -> None:
    await check(make(header={"typ": None}, aud=[TOKEN_URL, "https://other"]))


def _none_token() -> str:
    return raw({"alg": "none", "kid": "rsa"},
               {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 60, "jti": "x"})


def _hs256_with_public_key() -> str:
    header = {"alg": "HS256", "kid": "rsa", "typ": "JWT"}
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 60, "jti": "x"}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(RSA.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _signed_with(alg: str, key: Key, kid: str) -> str:
    return jwt.encode({"alg": alg, "kid": kid, "typ": "JWT"},
                      {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 60,
                       "jti": "x"}, key, algorithms=[alg])


def _quietly(build: Any, *args: Any) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        result: str = build(*args)
        return result


REFUSED: list[tuple[str, Any, str]] = [
    ("alg=none", lambda: _none_token(), "algorithm not allowed"),
    ("HS256 signed with the public key", _hs256_with_public_key, "algorithm not allowed"),
    ("RS256 is not a SMART assertion alg", lambda: _signed_with("RS256", RSA, "rsa"),
     "algorithm not allowed"),
    ("ES384 header over a P-256 key", lambda: _signed_with("ES256", EC256, "ec256"),
     "algorithm not allowed"),
    ("RSA key under 2048 bits", lambda: _quietly(make, SMALL_RSA), "key does not fit"),
    ("expired", lambda: make(exp=NOW - 31), "expired"),
    ("future nbf", lambda: make(nbf=NOW + 600), "not yet valid"),
    ("future iat", lambda: make(iat=NOW + 600), "issued in the future"),
    ("exp more than 5 minutes ahead", lambda: make(exp=NOW + 600), "too far ahead"),
    ("wrong aud", lambda: make(aud="https://other.example/token"), "wrong aud"),
    ("aud list without us", lambda: make(aud=["https://a", "https://b"]), "wrong aud"),
    ("iss differs from sub", lambda: make(iss="someone-else"), "iss and sub differ"),
    ("missing iss", lambda: make(iss=None), "missing iss"),
    ("missing exp", lambda: make(exp=None), "missing exp"),
    ("exp not a number", lambda: make(exp="tomorrow"), "not a NumericDate"),
    ("exp true", lambda: make(exp=True), "not a NumericDate"),
    ("missing jti", lambda: make(jti=None), "missing jti"),
    ("jti not a string", lambda: make(jti=7), "missing jti"),
    ("unknown kid", lambda: make(header={"kid": "other"}), "unknown kid"),
    ("missing kid", lambda: make(header={"kid": None}), "missing kid"),
    ("wrong typ", lambda: make(header={"typ": "at+jwt"}), "wrong typ"),
    ("embedded jwk", lambda: make(EC, header={"jwk": EC.as_dict(private=False)}),
     "key reference"),
    ("oversized header (a big embedded RSA jwk)",
     lambda: make(header={"jwk": RSA.as_dict(private=False)}), "malformed JWS"),
    ("jku", lambda: make(header={"jku": "https://attacker.example/jwks"}), "key reference"),
    ("x5u", lambda: make(header={"x5u": "https://attacker.example/cert"}), "key reference"),
    ("crit", lambda: raw({"alg": "RS384", "kid": "rsa", "crit": ["b64"], "b64": True},
                         {"iss": CLIENT, "sub": CLIENT}, b"sig"), "critical extension"),
    ("signed by another key under our kid",
     lambda: jwt.encode({"alg": "RS384", "kid": "rsa"},
                        {"iss": CLIENT, "sub": CLIENT, "aud": TOKEN_URL, "exp": NOW + 60,
                         "jti": "x"}, RSAKey.generate_key(2048), algorithms=["RS384"]),
     "bad signature"),
    ("not a JWS", lambda: "not-a-jwt", "not a compact JWS"),
    ("JSON array payload", lambda: raw({"alg": "RS384", "kid": "rsa"}, [1, 2]),  # type: ignore[arg-type]
     "not a JSON object"),
]


@pytest.mark.parametrize(("case", "build", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_bad_assertions_are_refused_with_a_loggable_reason(
    case: str, build: Any, reason: str
) -> None:
    with pytest.raises(TokenRejected) as refused:
        await check(build())
    assert reason in refused.value.reason
    # Reasons go to logs: they must never carry the assertion.
    assert "." not in refused.value.reason


async def test_the_wall_clock_decides_expiry() -> None:
    assertion = make(exp=int(time.time()) + 60, iat=int(time.time()))
    await check(assertion, now=int(time.time()))
    with pytest.raises(TokenRejected):
        await check(assertion, now=int(time.time()) + 600)
