"""Every knob of PeerBridge, read from the environment (`PEERBRIDGE_*`, plus `DATABASE_URL`).

Keep the class flat: one field per environment variable, a safe default, a one-line comment.
Each area adds its own fields under its own heading; the README's configuration table lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/peerbridge`, else `~/.local/share/peerbridge` (the XDG default)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "peerbridge"


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container's cpuset, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


_STAFF_ROLES = frozenset({"coordinator", "supporter", "supervisor", "clinic"})
DEFAULT_OIDC_PROVIDER = "default"  # the key of the provider the flat PEERBRIDGE_OIDC_* set


class OidcProvider(BaseModel):
    """One OpenID Connect provider the console offers single sign-on with (see the flat
    PEERBRIDGE_OIDC_* settings for what each field means)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # In its addresses: /console/sso/{key}/start and /console/sso/{key}/callback.
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    issuer: str
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)
    display_name: str = Field(max_length=80)
    organization: UUID | None = None
    organization_claim: str = "org"
    role_claim: str = "roles"
    email_claim: str = "email"
    allowed_roles: str = ",".join(sorted(_STAFF_ROLES))

    @property
    def allowed_role_names(self) -> tuple[str, ...]:
        return tuple(r.strip() for r in self.allowed_roles.split(",") if r.strip())

    @property
    def start_path(self) -> str:
        """Where the console's sign-in page sends a person to sign in with it."""
        return f"/console/sso{self._path_key}/start"

    @property
    def callback_path(self) -> str:
        """Its redirect URI's path (the flat settings' provider has no key in its addresses)."""
        return f"/console/sso{self._path_key}/callback"

    @property
    def _path_key(self) -> str:
        return "" if self.key == DEFAULT_OIDC_PROVIDER else f"/{self.key}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PEERBRIDGE_", extra="ignore", frozen=True)

    # --- process -------------------------------------------------------------------------------
    # `development` allows conveniences (embedded PostgreSQL, readable logs); `production`
    # requires DATABASE_URL and PEERBRIDGE_PUBLIC_BASE_URL and logs JSON lines.
    environment: Literal["development", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    data_dir: Path = Field(default_factory=default_data_dir)

    # --- HTTP ----------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # `serve`'s worker processes; None = the CPU count in production, 1 in development.
    workers: int | None = Field(default=None, ge=1, le=256)
    # The URL clients use to reach us (issuer, token URL, FHIR links); None = http://{host}:{port}.
    public_base_url: str | None = None
    # Apollo Router's default body limit; FHIR transaction Bundles are the largest requests we take.
    max_request_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    # JSON (bodies, GraphQL variables, WebSocket messages) nested deeper is refused while it is
    # parsed; FHIR's deepest real resources (nested QuestionnaireResponse items in a
    # transaction Bundle) stay far below, and Python's parser recursion far above.
    max_json_depth: int = Field(default=64, ge=8, le=256)

    # --- FHIR (api/integrations/fhir) -------------------------------------------------------------
    # Entries of one batch or transaction Bundle; more are refused (413, `Bundle.entry`).
    fhir_max_bundle_entries: int = Field(default=50, ge=1, le=1000)
    # `_include`/`_revinclude` resources added to one search response; past the cap the rest
    # are left out and an OperationOutcome entry (search.mode = outcome) says so.
    fhir_max_included: int = Field(default=100, ge=1, le=1000)

    # --- database ------------------------------------------------------------------------------
    # No prefix: the name every PaaS and tool already uses. None = embedded PostgreSQL under
    # data_dir (development only). repr=False: the URL may hold a password.
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "database_url"),
        repr=False,
    )
    # The owner role's URL, used only to apply migrations (`migrate`, and `serve` when one is
    # pending); None = DATABASE_URL. Lets the service itself connect as a role that may not
    # alter tables or truncate the audit trail. repr=False: the URL may hold a password.
    migration_database_url: str | None = Field(default=None, repr=False)
    # The role the service connects as: `migrate` re-grants it its rights after each run
    # (see `peerbridge db grant-service-role`). None = grant nothing.
    service_role: str | None = None
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    # How long a request waits for a free connection (or a new one while the database is
    # down) before it answers 503 with Retry-After; asyncpg alone would wait forever.
    db_acquire_timeout_s: float = Field(default=2.0, gt=0)
    # Client-side cap on one query; a little above statement_timeout so the server cancels first.
    db_command_timeout_s: float = Field(default=20.0, gt=0)
    # Server-side cap on one statement (PostgreSQL `statement_timeout`, milliseconds).
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)

    # --- auth (api/auth) -----------------------------------------------------------------------
    # Base64url 32-byte AES key sealing signing keys at rest; None = generated into data_dir
    # (0600). Replicas sharing a database must share this key. repr=False: it is a secret.
    key_encryption_key: str | None = Field(default=None, repr=False)
    # Access-token lifetime; SMART Backend Services caps it at 300 s.
    access_token_lifetime_s: int = Field(default=300, ge=30, le=300)
    # Clock-skew allowance for exp/iat/nbf of tokens and client assertions.
    auth_leeway_s: int = Field(default=30, ge=0, le=120)
    # How long each process trusts a cached "client is active"; bounds revocation delay.
    auth_client_status_ttl_s: float = Field(default=5.0, ge=0, le=60)
    # How long each process trusts its cached signing-key ring; bounds rotation/removal delay.
    auth_signing_key_refresh_s: float = Field(default=5.0, ge=0.1, le=60)
    # Client JWKS URLs and the external issuer's JWKS: cache TTL, minimum gap between refetches.
    auth_jwks_ttl_s: float = Field(default=300.0, ge=1)
    auth_jwks_min_refetch_s: float = Field(default=30.0, ge=0)
    # External issuer mode (Keycloak, Auth0, Entra): all three set to accept its access tokens.
    external_issuer: str | None = None
    external_audience: str | None = None
    external_jwks_url: str | None = None
    # Claim holding the PeerBridge organization UUID (dotted path for nested claims).
    external_organization_claim: str = "org"
    # Claim holding SMART scopes, space-separated string or list (`scope`, `scp`, `roles`).
    external_scope_claim: str = "scope"
    external_client_id_claim: str = "client_id"
    # Accepted JOSE `typ` values, lower case, comma-separated; add `jwt` for Keycloak/Entra.
    external_token_types: str = "at+jwt,application/at+jwt"

    # --- audit trail (api/services/audit_integrity.py) -----------------------------------------
    # How often `serve` seals new audit rows into a signed checkpoint; 0 = never (run
    # `peerbridge audit checkpoint` from a scheduler instead).
    audit_checkpoint_interval_s: float = Field(default=60.0, ge=0)
    # `serve` keeps the audit trail's month partitions created this many months ahead of the
    # current one (checked at start and every AUDIT_PARTITION_ROUND_S, api/auth/audit_schedule.py).
    audit_partition_months_ahead: int = Field(default=3, ge=0, le=120)

    # --- events (api/events) -------------------------------------------------------------------
    # Outbox events are kept this long after they were published (delivered onwards), so a
    # subscriber can resume from a cursor that old; older cursors get EVENTS_EXPIRED.
    outbox_retention_days: float = Field(default=7.0, gt=0)
    # How often `serve` runs its event schedule (prune old events, raise due escalations);
    # 0 = never in this process. Replicas may all run it: each round's work is shared out.
    events_schedule_interval_s: float = Field(default=15.0, ge=0)

    # --- delivery worker and FHIR Subscriptions (api/delivery) ---------------------------------
    # Run the delivery worker inside `serve`; turn off where separate `peerbridge worker`
    # processes deliver.
    delivery_worker_in_serve: bool = True
    # Failed tries before a delivery is dead (listed and retried with `peerbridge deliveries`).
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    # Backoff after the n-th failure: base * 2^(n-1), capped, with jitter (half to full).
    delivery_backoff_base_s: float = Field(default=2.0, gt=0)
    delivery_backoff_max_s: float = Field(default=600.0, gt=0)
    # A claimed delivery is re-sent after this long if its worker never reported back (it
    # died): the window in which a receiver may see a notification twice.
    delivery_lease_s: float = Field(default=60.0, ge=1)
    # How long one HTTP delivery may take when the subscription sets no timeout.
    delivery_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Notifications sent at once by one worker.
    delivery_concurrency: int = Field(default=16, ge=1, le=256)
    # The worker wakes on NOTIFY; this is its fallback poll (and heartbeat check) interval.
    delivery_poll_interval_s: float = Field(default=5.0, gt=0)
    # Delivered rows are deleted after this many days (pending and dead ones are kept).
    delivery_retention_days: float = Field(default=7.0, gt=0)
    # Let subscription endpoints resolve to private, loopback or link-local addresses (the
    # SSRF guard). None = allowed in development, refused in production. (Production also
    # requires https endpoints.)
    subscription_allow_private_endpoints: bool | None = None

    # --- rate limits (api/rate_limits.py; per process: N workers allow N times these) ---------
    # Requests per second (refill) and burst per OAuth client, on every authenticated request;
    # 0 = no limit.
    rate_limit_client_rps: float = Field(default=0.0, ge=0)
    rate_limit_client_burst: int = Field(default=100, ge=1)
    # POST /oauth/token per source address (bounds secret guessing and token storms); 0 = none.
    rate_limit_token_rps: float = Field(default=20.0, ge=0)
    rate_limit_token_burst: int = Field(default=100, ge=1)

    # --- housekeeping (api/housekeeping.py) -------------------------------------------------------
    # How often `serve` and `peerbridge worker` delete expired idempotency keys and assertion
    # jtis; 0 = never (schedule nothing else: the tables then grow).
    housekeeping_interval_s: float = Field(default=600.0, ge=0)
    # Idempotency keys (and the answers stored with them) are kept this many hours: a retry
    # with the same key within it replays the first answer, after it runs anew.
    idempotency_key_retention_h: float = Field(default=24.0, ge=1)

    # --- observability (api/observability) ------------------------------------------------------
    # Bearer token a Prometheus scraper must send to GET /metrics. Unset: /metrics is open in
    # development and not served in production. repr=False: it is a secret.
    metrics_token: str | None = Field(default=None, min_length=16, repr=False)

    # --- GraphQL (api/schema) ------------------------------------------------------------------
    # Introspection and GraphiQL: None = on in development, off in production.
    graphql_introspection: bool | None = None
    graphql_ide: bool | None = None
    # Documents beyond these limits are refused before anything runs.
    graphql_max_depth: int = Field(default=12, ge=2)
    graphql_max_aliases: int = Field(default=30, ge=0)
    graphql_max_tokens: int = Field(default=2000, ge=100)
    # Require a token even for `_service { sdl }` (gateways then need one to compose).
    graphql_sdl_requires_token: bool = False
    # Trusted documents: `any` runs any valid document and takes Automatic Persisted Queries;
    # `allowlist` runs only the documents registered with `peerbridge graphql register`.
    graphql_trusted_documents: Literal["any", "allowlist"] = "any"
    # Documents clients may register through Automatic Persisted Queries, shared by every
    # worker in the database; past it the oldest go (clients then send them again).
    graphql_persisted_queries_max: int = Field(default=10_000, ge=0)

    # --- the staff console (api/console) --------------------------------------------------------
    # A console session ends after this long unused, and this long after sign-in in any case.
    console_idle_timeout_s: int = Field(default=1800, ge=60)
    console_absolute_timeout_s: int = Field(default=43200, ge=300)
    # Failed sign-ins for one e-mail address within 15 minutes before sign-in is refused.
    console_login_max_failures: int = Field(default=5, ge=1)

    # --- console single sign-on (api/console/single_sign_on.py) --------------------------------
    # The organization's OpenID Connect provider, exactly as its ID tokens name it in `iss`
    # (discovery at {issuer}/.well-known/openid-configuration). "Sign in with ..." is offered
    # when the issuer, client id and client secret are all set. The redirect URI to register
    # with the provider is {PEERBRIDGE_PUBLIC_BASE_URL}/console/sso/callback.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)  # a secret
    # The sign-in page's button reads "Sign in with <this>".
    oidc_display_name: str = Field(default="your organization's account", max_length=80)
    # ID token claim (dotted path for nested claims) holding the person's PeerBridge
    # organization id, and the claim holding the console role(s) the provider grants them
    # (a string, space- or comma-separated, or a list); the account's own role must be among them.
    oidc_organization_claim: str = "org"
    oidc_role_claim: str = "roles"
    # ID token claim holding the e-mail address an account is found by (Microsoft Entra:
    # `preferred_username`, the user principal name, where `email` is not issued).
    oidc_email_claim: str = "email"
    # Console roles that may sign in by single sign-on, comma-separated (others use a password).
    oidc_allowed_roles: str = "coordinator,supporter,supervisor,clinic"
    # The one organization this provider speaks for (an organization's own provider: its tokens
    # need no organization claim); unset: a network's shared provider, whose claim decides.
    oidc_organization: UUID | None = None
    # More providers, one per organization that brings its own: a JSON list of objects with the
    # fields above in lower case without the prefix (issuer, client_id, client_secret,
    # display_name, organization, organization_claim, role_claim, email_claim, allowed_roles)
    # and a `key`
    # naming it in its addresses (redirect URI {base URL}/console/sso/{key}/callback).
    oidc_providers: tuple[OidcProvider, ...] = ()

    @model_validator(mode="after")
    def _check_pool_bounds(self) -> Settings:
        if self.db_pool_min_size > self.db_pool_max_size:
            raise ValueError("db_pool_min_size must not exceed db_pool_max_size")
        return self

    @model_validator(mode="after")
    def _check_single_sign_on(self) -> Settings:
        parts = (self.oidc_issuer, self.oidc_client_id, self.oidc_client_secret)
        if any(parts) and not all(parts):
            raise ValueError(
                "single sign-on needs oidc_issuer, oidc_client_id and oidc_client_secret together"
            )
        providers = self.single_sign_on_providers
        keys = [provider.key for provider in self.oidc_providers]
        if len(set(keys)) != len(keys) or DEFAULT_OIDC_PROVIDER in keys:
            raise ValueError("oidc_providers: each key once, and not 'default'")
        for provider in providers:
            scheme = "https://" if self.is_production else ("https://", "http://")
            if not provider.issuer.startswith(scheme):
                raise ValueError(f"the issuer of OIDC provider '{provider.key}' must be https")
            unknown = set(provider.allowed_role_names) - _STAFF_ROLES
            if unknown:
                names = ", ".join(sorted(unknown))
                raise ValueError(f"OIDC provider '{provider.key}' allows unknown roles: {names}")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def graphql_introspection_enabled(self) -> bool:
        if self.graphql_introspection is None:
            return not self.is_production
        return self.graphql_introspection

    @property
    def worker_count(self) -> int:
        if self.workers is not None:
            return self.workers
        return _usable_cpus() if self.is_production else 1

    @property
    def subscription_private_endpoints_allowed(self) -> bool:
        if self.subscription_allow_private_endpoints is None:
            return not self.is_production
        return self.subscription_allow_private_endpoints

    @property
    def graphql_ide_enabled(self) -> bool:
        return not self.is_production if self.graphql_ide is None else self.graphql_ide

    @property
    def single_sign_on_providers(self) -> tuple[OidcProvider, ...]:
        """Every provider the sign-in page offers: the flat settings' first, then the list."""
        if not (self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret):
            return self.oidc_providers
        flat = OidcProvider(
            key=DEFAULT_OIDC_PROVIDER,
            issuer=self.oidc_issuer,
            client_id=self.oidc_client_id,
            client_secret=self.oidc_client_secret,
            display_name=self.oidc_display_name,
            organization=self.oidc_organization,
            organization_claim=self.oidc_organization_claim,
            role_claim=self.oidc_role_claim,
            email_claim=self.oidc_email_claim,
            allowed_roles=self.oidc_allowed_roles,
        )
        return (flat, *self.oidc_providers)

    @property
    def base_url(self) -> str:
        """The public base URL without a trailing slash."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}"
