"""Bearer token → Principal without a database: routing, the verified-token cache, revocation."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from joserfc.jwk import Key, RSAKey

from api.auth import tokens
from api.auth.authenticator import Authenticator
from api.auth.config import AuthConfig
from api.auth.jws import TokenRejected
from api.auth.keys import SigningKey
from api.db.clients import ClientStatus
from api.domain.scopes import parse_scopes

ISSUER = "https://peerbridge.example"
KEY = RSAKey.generate_key(2048)
PUBLIC = RSAKey.import_key(KEY.as_dict(private=False))
ORG = uuid4()


class Keys:
    def __init__(self) -> None:
        self.ring: dict[str, tuple[str, Key]] = {"k1": ("RS256", PUBLIC)}
        self.lookups = 0

    async def verifier(self, kid: str) -> tuple[str, Key] | None:
        self.lookups += 1
        return self.ring.get(kid)


class Statuses:
    def __init__(self) -> None:
        self.active = True
        self.organization: UUID = ORG

    async def client(self, client_id: str) -> ClientStatus | None:
        return ClientStatus(self.active, self.organization) if client_id == "c1" else None

    async def organization_active(self, organization_id: UUID) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[Authenticator, Keys, Statuses, Clock]:
    keys, statuses, clock = Keys(), Statuses(), Clock()
    config = AuthConfig(public_url=ISSUER, data_dir=Path("/nonexistent"))
    auth = Authenticator(config, keys, statuses, clock=clock)  # type: ignore[arg-type]
    return auth, keys, statuses, clock


def mint(now: float, **changes: Any) -> str:
    token, _ = tokens.mint(
        SigningKey("k1", "RS256", KEY),
        issuer=ISSUER,
        audience=ISSUER,
        client_id=changes.get("client_id", "c1"),
        organization_id=ORG,
        scopes=parse_scopes(["system/Task.rs"]),
        now=int(now),
        lifetime=300,
    )
    return token


async def test_a_token_becomes_a_principal() -> None:
    auth, _, _, clock = setup()
    principal = await auth.authenticate(mint(clock.now), source_ip="10.0.0.1", trace_id="t")
    assert principal.client_id == "c1" and principal.subject == "c1"
    assert principal.organization_id == ORG
    assert principal.scopes == parse_scopes(["system/Task.rs"])
    assert (principal.source_ip, principal.trace_id) == ("10.0.0.1", "t")
    assert principal.token_id


async def test_a_repeated_token_still_expires_loses_its_key_and_its_client() -> None:
    auth, keys, statuses, clock = setup()
    token = mint(clock.now)
    await auth.authenticate(token)
    await auth.authenticate(token)  # from the cache

    clock.now += 300 + 30
    with pytest.raises(TokenRejected, match="expired"):
        await auth.authenticate(token)

    token = mint(clock.now)
    await auth.authenticate(token)
    statuses.active = False
    with pytest.raises(TokenRejected, match="revoked"):
        await auth.authenticate(token)
    statuses.active = True
    del keys.ring["k1"]
    with pytest.raises(TokenRejected, match="unknown kid"):
        await auth.authenticate(token)


async def test_the_cache_holds_only_verified_tokens() -> None:
    auth, _, _, clock = setup()
    good = mint(clock.now)
    head, payload, signature = good.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        with pytest.raises(TokenRejected):
            await auth.authenticate(forged)


async def test_a_token_moved_to_another_organization_is_refused() -> None:
    auth, _, statuses, clock = setup()
    token = mint(clock.now)
    statuses.organization = uuid4()
    with pytest.raises(TokenRejected, match="organization"):
        await auth.authenticate(token)


async def test_an_unknown_client_or_issuer_is_refused() -> None:
    auth, _, _, clock = setup()
    with pytest.raises(TokenRejected, match="revoked"):
        await auth.authenticate(mint(clock.now, client_id="ghost"))
    with pytest.raises(TokenRejected, match="malformed|not a compact"):
        await auth.authenticate("garbage.garbage.garbage")
