"""JWS hygiene shared by every JWT PeerBridge accepts (RFC 7515, RFC 8725 JWT best practices)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, RSAKey
from joserfc.jws import CompactSignature, JWSRegistry

# RFC 8725 3.1: the verifier, never the token, picks the algorithms. None of these is `none`
# or an HMAC, so a token "signed" with a public key as an HMAC secret can never verify.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                   "ES256", "ES384", "ES512"})
# Headers that let the token choose its own key or change how it is processed (RFC 8725 3.10).
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit", "b64"})
_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
MIN_RSA_BITS = 2048
MAX_JWT_BYTES = 16 * 1024


class TokenRejected(Exception):
    """A JWT failed a check; `reason` is safe to log (never holds the token or its claims)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class UnverifiedJWT:
    """A parsed but not yet verified JWS compact JWT: read nothing from it you would trust."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    signature: CompactSignature

    @property
    def kid(self) -> str:
        return str(self.header["kid"])

    @property
    def alg(self) -> str:
        return str(self.header["alg"])


def parse(token: str | bytes) -> UnverifiedJWT:
    """Split and decode a compact JWS whose payload is a JSON object; no signature check yet."""
    raw = token.encode("ascii", "replace") if isinstance(token, str) else token
    if len(raw) > MAX_JWT_BYTES or raw.count(b".") != 2:
        raise TokenRejected("not a compact JWS")
    try:
        obj = jws.extract_compact(raw)
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, TypeError):
        raise TokenRejected("malformed JWS") from None
    if not isinstance(claims, dict):
        raise TokenRejected("payload is not a JSON object")
    return UnverifiedJWT(obj.headers(), claims, obj)


def check_header(jwt: UnverifiedJWT, algorithms: Collection[str], types: Collection[str]) -> None:
    """Refuse unexpected `alg`, a missing `kid`, a wrong `typ`, and key-carrying headers.

    `types` holds lower-case accepted `typ` values; include "" to accept a missing `typ`.
    """
    header = jwt.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        raise TokenRejected("algorithm not allowed")
    if _FORBIDDEN_HEADERS & header.keys():
        raise TokenRejected("header carries a key reference or critical extension")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > 256:
        raise TokenRejected("missing kid")
    typ = header.get("typ", "")
    if not isinstance(typ, str) or typ.lower() not in types:
        raise TokenRejected("wrong typ")


def verify_signature(jwt: UnverifiedJWT, key: Key) -> None:
    """Verify with exactly the header's (already allowed) algorithm and a key fit for it."""
    alg = jwt.alg
    if not key_fits(key, alg):
        raise TokenRejected("key does not fit the algorithm")
    try:
        valid = jws.validate_compact(jwt.signature, key, registry=_registry(alg))
    except JoseError:
        valid = False
    if not valid:
        raise TokenRejected("bad signature")


def key_fits(key: Key, alg: str) -> bool:
    """True when `key` is a public-key type and size that `alg` may use."""
    if alg.startswith(("RS", "PS")):
        return isinstance(key, RSAKey) and _rsa_bits(key) >= MIN_RSA_BITS
    if alg in _EC_CURVES:
        return isinstance(key, ECKey) and key.curve_name == _EC_CURVES[alg]
    return False


def _rsa_bits(key: RSAKey) -> int:
    modulus: int = key.public_key.public_numbers().n
    return modulus.bit_length()


@cache
def _registry(alg: str) -> JWSRegistry:
    return JWSRegistry(algorithms=[alg])


def check_times(
    claims: Mapping[str, Any], now: int, leeway: int, *, max_lifetime: int | None = None
) -> int:
    """Check `exp` (required), `iat` and `nbf` (RFC 7519 4.1.4-6); returns `exp`.

    With `max_lifetime`, `exp` may lie at most that far after now (an assertion) and `iat`
    is required and at most that far before `exp` (an access token we minted).
    """
    exp = _numeric(claims, "exp", required=True)
    assert exp is not None
    if exp <= now - leeway:
        raise TokenRejected("expired")
    iat = _numeric(claims, "iat", required=False)
    if iat is not None and iat > now + leeway:
        raise TokenRejected("issued in the future")
    nbf = _numeric(claims, "nbf", required=False)
    if nbf is not None and nbf > now + leeway:
        raise TokenRejected("not yet valid")
    if max_lifetime is not None and exp > now + max_lifetime + leeway:
        raise TokenRejected("expires too far ahead")
    return exp


def _numeric(claims: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise TokenRejected(f"missing {name}")
        return None
    # bool is an int subclass: `"exp": true` is not a date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"{name} is not a NumericDate")
    return int(value)


def check_audience(claims: Mapping[str, Any], audience: str) -> None:
    """`aud` must be (or contain) exactly `audience` (RFC 7519 4.1.3)."""
    aud = claims.get("aud")
    if isinstance(aud, str):
        ok = aud == audience
    elif isinstance(aud, list):
        ok = audience in aud and all(isinstance(item, str) for item in aud)
    else:
        ok = False
    if not ok:
        raise TokenRejected("wrong aud")


def required_string(claims: Mapping[str, Any], name: str, max_length: int = 512) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise TokenRejected(f"missing {name}")
    return value
