"""Authentication settings in one value object, read from `api.settings.Settings` at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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
