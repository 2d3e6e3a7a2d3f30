"""RFC 9068 access tokens: minting and validation with in-memory keys; key ring JWKS."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import pytest
from joserfc import jws
from joserfc.jwk import Key, RSAKey

from api.auth import jws as jws_checks
from api.auth import tokens
from api.auth.jws import TokenRejected
from api.auth.keys import KeyRing, SigningKey
from api.domain.scopes import parse_scopes

ISSUER = "https://peerbridge.example"
NOW = 1_800_000_000
KEY = RSAKey.generate_key(2048)
SIGNER = SigningKey("k1", "RS256", KEY)
ORG = uuid4()


async def _find(kid: str) -> tuple[str, Key] | None:
    return ("RS256", KEY) if kid == "k1" else None


async def verify(token: str, now: int = NOW) -> tokens.AccessToken:
    return await tokens.verify(jws_checks.parse(token), _find, issuer=ISSUER, audience=ISSUER,
                               now=now, leeway=30)


def mint(**changes: Any) -> str:
    token, _ = tokens.mint(SIGNER, issuer=ISSUER, audience=ISSUER, client_id="c1",
                           organization_id=ORG, scopes=parse_scopes(["system/Task.rs"]), now=NOW,
                           **changes)
    return token


async def test_a_minted_token_has_the_rfc9068_shape_and_verifies() -> None:
    token = mint(lifetime=300)
    header = jws.extract_compact(token.encode()).headers()
    claims = json.loads(jws.extract_compact(token.encode()).payload)
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
    assert set(claims) == {"iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope", "org"}
    assert claims["exp"] - claims["iat"] == 300
    verified = await verify(token)
    assert (verified.client_id, verified.subject, verified.organization, verified.scope) == (
        "c1", "c1", str(ORG), "system/Task.rs")


def test_lifetimes_over_300_seconds_are_not_minted() -> None:
    with pytest.raises(ValueError):
        mint(lifetime=301)


async def test_tokens_get_distinct_jtis() -> None:
    assert (await verify(mint())).jti != (await verify(mint())).jti


async def test_expiry_honours_the_leeway_only() -> None:
    token = mint(lifetime=60)
    await verify(token, now=NOW + 60 + 29)
    with pytest.raises(TokenRejected, match="expired"):
        await verify(token, now=NOW + 60 + 30)


def _sign(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return jws.serialize_compact(header, json.dumps(claims), KEY, algorithms=[header["alg"]])


GOOD_HEADER = {"alg": "RS256", "typ": "at+jwt", "kid": "k1"}
GOOD = {"iss": ISSUER, "sub": "c1", "aud": ISSUER, "exp": NOW + 100, "iat": NOW, "jti": "j",
        "client_id": "c1", "scope": "system/Task.rs", "org": str(ORG)}


@pytest.mark.parametrize(
    ("header", "claims", "reason"),
    [
        ({"alg": "RS384"}, {}, "algorithm not allowed"),
        ({"typ": "JWT"}, {}, "wrong typ"),
        ({"typ": "application/at+jwt"}, {}, None),
        ({"kid": "k2"}, {}, "unknown kid"),
        ({}, {"aud": "https://elsewhere"}, "wrong aud"),
        ({}, {"aud": [ISSUER, "https://other"]}, None),
        ({}, {"iss": "https://elsewhere"}, "wrong iss"),
        ({}, {"exp": NOW + 400}, "lifetime too long"),
        ({}, {"iat": None}, "lifetime too long"),
        ({}, {"client_id": None}, "missing client_id"),
        ({}, {"org": None}, "missing org"),
        ({}, {"scope": ["system/Task.rs"]}, "scope is not a string"),
    ],
)
async def test_claim_and_header_checks(
    header: dict[str, Any], claims: dict[str, Any], reason: str | None
) -> None:
    token = _sign({**GOOD_HEADER, **header},
                  {k: v for k, v in {**GOOD, **claims}.items() if v is not None})
    if reason is None:
        await verify(token)
        return
    with pytest.raises(TokenRejected) as refused:
        await verify(token)
    assert refused.value.reason == reason


def test_the_key_ring_publishes_public_members_only() -> None:
    ring = KeyRing(SIGNER, {"k1": ("RS256", KEY)}, 0.0)
    (published,) = ring.jwks()["keys"]
    assert published == {**{k: v for k, v in KEY.as_dict(private=False).items()
                            if k in ("kty", "n", "e")},
                         "kid": "k1", "alg": "RS256", "use": "sig"}
    assert "d" not in published
