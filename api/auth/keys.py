"""PeerBridge's access-token signing keys: generation, the in-memory ring, rotation (RFC 9068 4)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import Key, RSAKey, import_key

from api.auth.kek import KeyEncryptionError, KeyEncryptionKey
from api.db.signing_keys import SigningKeyRecord, SigningKeyRepository

log = logging.getLogger(__name__)

# RS256: RFC 9068 2.1 requires every resource server to support it, so third-party resource
# servers in a federation can verify our tokens without special configuration.
SIGNING_ALG = "RS256"
RSA_BITS = 2048
PUBLIC_JWK_FIELDS = ("kty", "n", "e", "crv", "x", "y")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private: Key = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    """A snapshot: the key that signs now and every key that still verifies, by kid."""

    signer: SigningKey | None
    verifiers: dict[str, tuple[str, Key]]
    loaded_at: float

    def verifier(self, kid: str) -> tuple[str, Key] | None:
        return self.verifiers.get(kid)

    def jwks(self) -> dict[str, list[dict[str, Any]]]:
        """The public JWK Set (RFC 7517 5): only public members, whatever the key holds."""
        keys = []
        for kid, (alg, key) in self.verifiers.items():
            public = key.as_dict(private=False)
            member = {name: public[name] for name in PUBLIC_JWK_FIELDS if name in public}
            keys.append({**member, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": keys}


def new_signing_key(kek: KeyEncryptionKey) -> SigningKeyRecord:
    """Generate an RSA key; kid is its RFC 7638 thumbprint; the private part sealed by the KEK."""
    key = RSAKey.generate_key(RSA_BITS, private=True, auto_kid=False)
    kid = key.thumbprint()
    private_key = key.private_key
    assert private_key is not None
    der = private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKeyRecord(
        kid=kid,
        alg=SIGNING_ALG,
        public_jwk=dict(key.as_dict(private=False)),
        private_ciphertext=kek.seal(der, kid.encode()),
        kek_id=kek.kek_id,
        created_at=datetime.now(UTC),
    )


def _public_key(record: SigningKeyRecord) -> Key:
    return import_key(dict(record.public_jwk))


def _private_key(record: SigningKeyRecord, kek: KeyEncryptionKey) -> Key:
    if record.private_ciphertext is None:
        raise KeyEncryptionError(f"signing key {record.kid} has no private part")
    if record.kek_id != kek.kek_id:
        raise KeyEncryptionError(
            f"signing key {record.kid} is sealed under key-encryption key {record.kek_id}, "
            f"this process has {kek.kek_id}: set PEERBRIDGE_KEY_ENCRYPTION_KEY to the shared key"
        )
    der = kek.open(record.private_ciphertext, record.kid.encode())
    return import_key(der, "RSA")


class SigningKeys:
    """The database-backed key ring every replica shares, cached per process.

    The ring reloads after `refresh_seconds`, and at most once per `refetch_seconds` when a token
    names an unknown kid, so a rotation or removal made elsewhere reaches this process within
    `refresh_seconds`.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        kek: KeyEncryptionKey,
        *,
        refresh_seconds: float = 5.0,
        refetch_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._kek = kek
        self._refresh = refresh_seconds
        self._refetch = refetch_seconds
        self._clock = clock
        self._ring: KeyRing | None = None
        self._private_cache: dict[str, Key] = {}
        self._lock = asyncio.Lock()

    async def ensure_active(self) -> None:
        """Create the first signing key when the database has none (first start)."""
        async with self._pool.acquire() as conn:
            await SigningKeyRepository(conn).add_first(new_signing_key(self._kek))
        await self.reload()

    async def ring(self) -> KeyRing:
        ring = self._ring
        if ring is None or self._clock() - ring.loaded_at >= self._refresh:
            return await self.reload()
        return ring

    async def signer(self) -> SigningKey:
        signer = (await self.ring()).signer
        if signer is None:
            raise KeyEncryptionError("no active signing key; run `peerbridge keys rotate`")
        return signer

    async def verifier(self, kid: str) -> tuple[str, Key] | None:
        """The (alg, public key) for `kid`, reloading once (rate-limited) when it is unknown."""
        ring = await self.ring()
        found = ring.verifier(kid)
        if found is None and self._clock() - ring.loaded_at >= self._refetch:
            found = (await self.reload()).verifier(kid)
        return found

    async def reload(self) -> KeyRing:
        async with self._lock:
            async with self._pool.acquire() as conn:
                records = await SigningKeyRepository(conn).usable()
            self._ring = self._build(records)
            return self._ring

    def invalidate(self) -> None:
        self._ring = None

    def _build(self, records: list[SigningKeyRecord]) -> KeyRing:
        verifiers = {record.kid: (record.alg, _public_key(record)) for record in records}
        signer = None
        active = next((record for record in records if record.retired_at is None), None)
        if active is not None:
            # Decrypt once per kid: the ring reloads every few seconds, the key rarely changes.
            private = self._private_cache.get(active.kid)
            if private is None:
                private = _private_key(active, self._kek)
                self._private_cache = {active.kid: private}
            signer = SigningKey(active.kid, active.alg, private)
        return KeyRing(signer, verifiers, self._clock())

    async def rotate(self, retire_after: timedelta) -> tuple[SigningKeyRecord, list[str]]:
        """Make a new key the signer; remove keys retired longer ago than `retire_after`."""
        record = await rotate(self._pool, self._kek, retire_after)
        self.invalidate()
        return record

    async def remove(self, kid: str) -> SigningKeyRecord:
        async with self._pool.acquire() as conn:
            record = await SigningKeyRepository(conn).remove(kid)
        self.invalidate()
        return record


async def rotate(
    pool: asyncpg.Pool, kek: KeyEncryptionKey, retire_after: timedelta
) -> tuple[SigningKeyRecord, list[str]]:
    """Add a new active key; the previous one keeps verifying until its tokens have expired.

    Keys retired more than `retire_after` ago (longer than any token they signed can live)
    are removed in the same transaction.
    """
    record = new_signing_key(kek)
    async with pool.acquire() as conn, conn.transaction():
        repo = SigningKeyRepository(conn)
        removed = await repo.remove_retired_before(datetime.now(UTC) - retire_after)
        stored = await repo.rotate_in(record)
    log.info("signing key %s now signs; removed %s", stored.kid, removed or "none")
    return stored, removed
