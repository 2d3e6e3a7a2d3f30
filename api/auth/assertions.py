"""Client authentication by signed JWT assertion: SMART Backend Services, RFC 7523 2.2 and 3.

https://hl7.org/fhir/smart-app-launch/backend-services.html#request-access-token
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from joserfc.jwk import Key

from api.auth import jws
from api.auth.jws import TokenRejected, UnverifiedJWT

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services: servers SHALL support RS384 and ES384, nothing weaker is needed.
ASSERTION_ALGORITHMS = ("RS384", "ES384")
# SMART: `exp` no more than five minutes in the future.
MAX_ASSERTION_LIFETIME = 300
# SMART's header `typ` is "JWT"; a missing typ is tolerated because many JOSE libraries omit it,
# but any other type (an access token, an ID token with typ, ...) is not an assertion.
_ASSERTION_TYPES = ("jwt", "")


@dataclass(frozen=True)
class VerifiedAssertion:
    client_id: str
    jti: str
    expires_at: int


def peek(assertion: str) -> tuple[UnverifiedJWT, str]:
    """Parse the assertion and check its header; returns it with the client id it claims.

    Only used to find the client whose keys will verify it: nothing here is trusted yet.
    """
    jwt = jws.parse(assertion)
    jws.check_header(jwt, ASSERTION_ALGORITHMS, _ASSERTION_TYPES)
    iss = jws.required_string(jwt.claims, "iss", 256)
    sub = jws.required_string(jwt.claims, "sub", 256)
    if iss != sub:
        raise TokenRejected("iss and sub differ")
    return jwt, iss


async def verify(
    jwt: UnverifiedJWT,
    client_id: str,
    find_key: Callable[[str], Awaitable[Key | None]],
    *,
    token_url: str,
    now: int,
    leeway: int,
) -> VerifiedAssertion:
    """Verify signature and claims of an assertion `peek` accepted; the caller checks the jti."""
    key = await find_key(jwt.kid)
    if key is None:
        raise TokenRejected("unknown kid")
    jws.verify_signature(jwt, key)
    claims = jwt.claims
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise TokenRejected("wrong iss")
    jws.check_audience(claims, token_url)
    exp = jws.check_times(claims, now, leeway, max_lifetime=MAX_ASSERTION_LIFETIME)
    jti = jws.required_string(claims, "jti", 256)
    return VerifiedAssertion(client_id, jti, exp)
