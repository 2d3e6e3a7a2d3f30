"""The auth room's long-lived parts, built once per app in the lifespan (after the pool opens)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
from starlette.applications import Starlette

from api.auth import config as auth_config
from api.auth import kek
from api.auth.authenticator import Authenticator, StatusCache
from api.auth.config import AuthConfig
from api.auth.external import ExternalTokens
from api.auth.jwks import JWKSCache, RemoteJWKS
from api.auth.keys import SigningKeys
from api.auth.token_endpoint import TokenEndpoint
from api.settings import Settings


@dataclass(frozen=True)
class AuthRuntime:
    config: AuthConfig
    kek: kek.KeyEncryptionKey
    keys: SigningKeys
    statuses: StatusCache
    authenticator: Authenticator
    token_endpoint: TokenEndpoint


def load_kek(config: AuthConfig, *, production: bool = False) -> kek.KeyEncryptionKey:
    if production and not config.key_encryption_key:
        # A per-machine generated key cannot open keys another replica sealed.
        raise kek.KeyEncryptionError("production requires PEERBRIDGE_KEY_ENCRYPTION_KEY")
    return kek.load(config.key_encryption_key, config.data_dir)


@asynccontextmanager
async def open_runtime(
    config: AuthConfig, pool: asyncpg.Pool, *, production: bool = False,
    http: httpx.AsyncClient | None = None,
) -> AsyncIterator[AuthRuntime]:
    """Load the KEK, make sure a signing key exists, and wire the auth parts to the pool."""
    key_encryption_key = load_kek(config, production=production)
    keys = SigningKeys(pool, key_encryption_key, refresh_seconds=config.signing_key_refresh_seconds)
    await keys.ensure_active()
    # Redirects off: a JWKS URL must serve the keys itself, not bounce us somewhere else.
    owned = http is None
    client = http or httpx.AsyncClient(follow_redirects=False, timeout=5.0)
    try:
        statuses = StatusCache(pool, config.client_status_ttl_seconds)
        external = None
        if config.external is not None:
            jwks = RemoteJWKS(
                config.external.jwks_url,
                client,
                ttl=config.external.jwks_ttl_seconds,
                min_refetch=config.external.jwks_min_refetch_seconds,
            )
            external = ExternalTokens(config.external, jwks)
        client_jwks = JWKSCache(
            client,
            ttl=config.client_jwks_ttl_seconds,
            min_refetch=config.client_jwks_min_refetch_seconds,
        )
        yield AuthRuntime(
            config=config,
            kek=key_encryption_key,
            keys=keys,
            statuses=statuses,
            authenticator=Authenticator(config, keys, statuses, external),
            token_endpoint=TokenEndpoint(pool, config, keys, client_jwks),
        )
    finally:
        if owned:
            await client.aclose()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """App lifespan part: `app.state.auth` for the middleware and the OAuth routes."""
    settings: Settings = app.state.settings
    config = auth_config.from_settings(settings)
    async with open_runtime(config, app.state.pool, production=settings.is_production) as runtime:
        app.state.auth = runtime
        yield
