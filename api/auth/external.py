"""Access tokens from an external authorization server (Keycloak, Auth0, Entra) (RFC 9068 4).

Claim mapping is configured in `ExternalIssuer` (api/auth/config.py): the organization claim
must hold a PeerBridge organization UUID; the scope claim holds SMART v2 scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from api.auth import jws
from api.auth.config import ExternalIssuer
from api.auth.jwks import RemoteJWKS
from api.auth.jws import TokenRejected, UnverifiedJWT


@dataclass(frozen=True)
class ExternalClaims:
    subject: str
    client_id: str
    organization_id: UUID
    scopes: tuple[str, ...]
    jti: str | None


class ExternalTokens:
    """Validates the external issuer's tokens against its JWKS (cached, see RemoteJWKS)."""

    def __init__(self, issuer: ExternalIssuer, jwks: RemoteJWKS) -> None:
        self.issuer = issuer
        self._jwks = jwks

    async def verify(self, jwt: UnverifiedJWT, *, now: int, leeway: int) -> ExternalClaims:
        config = self.issuer
        jws.check_header(jwt, config.algorithms, config.token_types)
        key = await self._jwks.key(jwt.kid)
        if key is None:
            raise TokenRejected("unknown kid")
        jws.verify_signature(jwt, key)
        claims = jwt.claims
        if claims.get("iss") != config.issuer:
            raise TokenRejected("wrong iss")
        jws.check_audience(claims, config.audience)
        jws.check_times(claims, now, leeway)
        subject = jws.required_string(claims, "sub", 256)
        client_id = _first_string(claims, (config.client_id_claim, "client_id", "azp")) or subject
        jti = claims.get("jti")
        return ExternalClaims(
            subject=subject,
            client_id=client_id,
            organization_id=_organization(claims, config.organization_claim),
            scopes=_scopes(_claim(claims, config.scope_claim)),
            jti=jti if isinstance(jti, str) else None,
        )


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path (`realm_access.org`); a top-level claim named with dots wins."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _first_string(claims: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = _claim(claims, name)
        if isinstance(value, str) and value and len(value) <= 256:
            return value
    return None


def _organization(claims: Mapping[str, Any], path: str) -> UUID:
    value = _claim(claims, path)
    # Some issuers can only emit lists for custom claims: accept a list of exactly one.
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    try:
        return UUID(str(value)) if isinstance(value, str) else _missing_org()
    except ValueError:
        return _missing_org()


def _missing_org() -> UUID:
    raise TokenRejected("organization claim missing or not a PeerBridge organization id")


def _scopes(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()
