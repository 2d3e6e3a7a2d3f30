"""Authentication settings in one value object, read from `api.settings.Settings` at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from api.settings import Settings

# RFC 7519 4.1.4 lets verifiers allow "a small leeway" for clock skew between machines.
DEFAULT_LEEWAY = 30


@dataclass(frozen=True)
class ExternalIssuer:
    """A third-party authorization server whose access tokens PeerBridge also accepts.

    Claim mapping: `organization_claim` (dotted path for nested claims) must hold a PeerBridge
    organization UUID; `scope_claim` holds SMART scopes as a space-separated string or a list
    (e.g. `scope`, or `scp`/`roles` for Entra); `client_id_claim` names the client (`client_id`,
    else `azp`, else `sub`).
    """

    issuer: str
    audience: str
    jwks_url: str
    organization_claim: str = "org"
    scope_claim: str = "scope"
    client_id_claim: str = "client_id"
    algorithms: tuple[str, ...] = ("RS256", "RS384", "PS256", "ES256", "ES384")
    # RFC 9068 tokens say `at+jwt`; Keycloak and Entra say `JWT`: add "jwt" for them.
    token_types: tuple[str, ...] = ("at+jwt", "application/at+jwt")
    jwks_ttl_seconds: float = 300.0
    jwks_min_refetch_seconds: float = 30.0


@dataclass(frozen=True)
class AuthConfig:
    """Everything `api.auth` needs to know about the deployment."""

    public_url: str
    data_dir: Path
    key_encryption_key: str | None = field(default=None, repr=False)
    access_token_lifetime: int = 300
    leeway_seconds: int = DEFAULT_LEEWAY
    # Upper bound on how long a revoked client's outstanding tokens keep working per process.
    client_status_ttl_seconds: float = 5.0
    # Upper bound on how long a rotation or key removal elsewhere goes unnoticed per process.
    signing_key_refresh_seconds: float = 5.0
    client_jwks_ttl_seconds: float = 300.0
    client_jwks_min_refetch_seconds: float = 30.0
    external: ExternalIssuer | None = None

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def audience(self) -> str:
        """Our access tokens' `aud`: the API base URL, one resource server for both doors."""
        return self.issuer

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/oauth/token"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/.well-known/jwks.json"


def from_settings(settings: Settings) -> AuthConfig:
    external = None
    if settings.external_issuer or settings.external_jwks_url or settings.external_audience:
        if not (settings.external_issuer and settings.external_jwks_url
                and settings.external_audience):
            raise ValueError(
                "external issuer mode needs PEERBRIDGE_EXTERNAL_ISSUER, "
                "PEERBRIDGE_EXTERNAL_AUDIENCE and PEERBRIDGE_EXTERNAL_JWKS_URL together"
            )
        external = ExternalIssuer(
            issuer=settings.external_issuer,
            audience=settings.external_audience,
            jwks_url=settings.external_jwks_url,
            organization_claim=settings.external_organization_claim,
            scope_claim=settings.external_scope_claim,
            client_id_claim=settings.external_client_id_claim,
            token_types=tuple(
                t.strip().lower() for t in settings.external_token_types.split(",") if t.strip()
            ),
            jwks_ttl_seconds=settings.auth_jwks_ttl_s,
            jwks_min_refetch_seconds=settings.auth_jwks_min_refetch_s,
        )
    return AuthConfig(
        public_url=settings.base_url,
        data_dir=settings.data_dir,
        key_encryption_key=settings.key_encryption_key,
        access_token_lifetime=settings.access_token_lifetime_s,
        leeway_seconds=settings.auth_leeway_s,
        client_status_ttl_seconds=settings.auth_client_status_ttl_s,
        signing_key_refresh_seconds=settings.auth_signing_key_refresh_s,
        client_jwks_ttl_seconds=settings.auth_jwks_ttl_s,
        client_jwks_min_refetch_seconds=settings.auth_jwks_min_refetch_s,
        external=external,
    )
