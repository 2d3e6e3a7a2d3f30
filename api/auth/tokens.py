"""PeerBridge access tokens: JWT profile for OAuth 2.0 access tokens (RFC 9068).

https://www.rfc-editor.org/rfc/rfc9068
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from joserfc import jws as jose_jws
from joserfc.jwk import Key

from api.auth import jws
from api.auth.jws import TokenRejected
from api.auth.keys import SIGNING_ALG, SigningKey
from api.domain.scopes import Scope

ACCESS_TOKEN_TYP = "at+jwt"
# RFC 9068 4: `typ` is "at+jwt"; "application/at+jwt" is the same media type spelled in full.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
MAX_LIFETIME = 300
# Every algorithm our signing keys use (api.auth.keys.SIGNING_ALG).
TOKEN_ALGORITHMS = (SIGNING_ALG,)
# Our organization claim. RFC 9068 leaves room for private claims; short like `client_id`.
ORG_CLAIM = "org"


@dataclass(frozen=True)
class AccessToken:
    """The claims of a verified access token that authentication needs."""

    subject: str
    client_id: str
    organization: str
    scope: str
    jti: str
    expires_at: int
    issued_at: int
    kid: str = ""


def mint(
    signer: SigningKey,
    *,
    issuer: str,
    audience: str,
    client_id: str,
    organization_id: UUID,
    scopes: Sequence[Scope],
    now: int,
    lifetime: int = MAX_LIFETIME,
) -> tuple[str, AccessToken]:
    """Sign an RFC 9068 access token for a client acting for its organization (sub = client_id)."""
    if not 0 < lifetime <= MAX_LIFETIME:
        raise ValueError("access token lifetime must be between 1 and 300 seconds")
    token = AccessToken(
        subject=client_id,
        client_id=client_id,
        organization=str(organization_id),
        scope=" ".join(str(scope) for scope in scopes),
        jti=secrets.token_urlsafe(16),
        expires_at=now + lifetime,
        issued_at=now,
        kid=signer.kid,
    )
    claims = {
        "iss": issuer,
        "sub": token.subject,
        "aud": audience,
        "exp": token.expires_at,
        "iat": token.issued_at,
        "jti": token.jti,
        "client_id": token.client_id,
        "scope": token.scope,
        ORG_CLAIM: token.organization,
    }
    header = {"alg": signer.alg, "typ": ACCESS_TOKEN_TYP, "kid": signer.kid}
    payload = json.dumps(claims, separators=(",", ":"))
    compact = jose_jws.serialize_compact(header, payload, signer.private, algorithms=[signer.alg])
    return compact, token


async def verify(
    jwt: jws.UnverifiedJWT,
    find_key: Callable[[str], Awaitable[tuple[str, Key] | None]],
    *,
    issuer: str,
    audience: str,
    now: int,
    leeway: int,
) -> AccessToken:
    """Validate one of our access tokens as RFC 9068 4 lists, plus our own lifetime bound."""
    jws.check_header(jwt, TOKEN_ALGORITHMS, ACCESS_TOKEN_TYPES)
    found = await find_key(jwt.kid)
    if found is None:
        raise TokenRejected("unknown kid")
    alg, key = found
    # The key's recorded algorithm, not the header, decides how it verifies (RFC 8725 3.1).
    if alg != jwt.alg:
        raise TokenRejected("algorithm not allowed")
    jws.verify_signature(jwt, key)
    claims = jwt.claims
    if claims.get("iss") != issuer:
        raise TokenRejected("wrong iss")
    jws.check_audience(claims, audience)
    exp = jws.check_times(claims, now, leeway)
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int) or exp - iat > MAX_LIFETIME:
        raise TokenRejected("lifetime too long")
    return AccessToken(
        subject=jws.required_string(claims, "sub", 256),
        client_id=jws.required_string(claims, "client_id", 256),
        organization=jws.required_string(claims, ORG_CLAIM, 64),
        scope=_scope(claims.get("scope")),
        jti=jws.required_string(claims, "jti", 256),
        expires_at=exp,
        issued_at=iat,
        kid=jwt.kid,
    )


def _scope(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TokenRejected("scope is not a string")
    return value
