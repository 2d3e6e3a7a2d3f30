"""Discovery documents (SMART App Launch 2, RFC 8414), JWKS, and replay-store housekeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from api.db.clients import AssertionReplayStore
from api.settings import Settings


async def test_smart_configuration_has_the_required_fields(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await client.get("/.well-known/smart-configuration")
    assert response.status_code == 200
    config = response.json()
    # SMART App Launch 2: required fields, then the ones SMART Backend Services clients rely on.
    for field in ("token_endpoint", "grant_types_supported", "capabilities",
                  "code_challenge_methods_supported", "token_endpoint_auth_methods_supported",
                  "token_endpoint_auth_signing_alg_values_supported", "scopes_supported",
                  "jwks_uri", "issuer"):
        assert field in config, field
    assert config["issuer"] == settings.base_url
    assert config["token_endpoint"] == f"{settings.base_url}/oauth/token"
    assert config["grant_types_supported"] == ["client_credentials"]
    assert {"client-confidential-asymmetric", "permission-v2"} <= set(config["capabilities"])
    assert "plain" not in config["code_challenge_methods_supported"]
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "system/ServiceRequest.rs" in config["scopes_supported"]


async def test_rfc8414_metadata_agrees_with_the_smart_configuration(
    client: httpx.AsyncClient,
) -> None:
    smart = (await client.get("/.well-known/smart-configuration")).json()
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    for field in ("issuer", "token_endpoint", "jwks_uri", "grant_types_supported",
                  "token_endpoint_auth_methods_supported", "scopes_supported"):
        assert metadata[field] == smart[field]
    assert metadata["response_types_supported"] == []


async def test_both_jwks_paths_publish_the_same_public_keys(client: httpx.AsyncClient) -> None:
    well_known = await client.get("/.well-known/jwks.json")
    oauth = await client.get("/oauth/jwks")
    assert well_known.json() == oauth.json()
    (key,) = well_known.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert "max-age" in well_known.headers["cache-control"]


async def test_expired_assertion_ids_are_purged(app: object, pool: asyncpg.Pool) -> None:
    store = AssertionReplayStore(pool)
    now = datetime.now(UTC)
    assert await store.remember("c1", "old", now - timedelta(seconds=1))
    assert await store.remember("c1", "live", now + timedelta(minutes=5))
    assert not await store.remember("c1", "live", now + timedelta(minutes=5))
    assert await store.purge_expired() == 1
    assert not await store.remember("c1", "live", now + timedelta(minutes=5))
