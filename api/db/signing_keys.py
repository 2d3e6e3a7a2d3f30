"""PeerBridge's access-token signing keys over asyncpg (table `signing_keys` in 0002_auth.sql)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from api.domain.errors import Conflict, NotFound


@dataclass(frozen=True)
class SigningKeyRecord:
    """One stored key: public JWK in clear, private key as ciphertext under the KEK `kek_id`."""

    kid: str
    alg: str
    public_jwk: dict[str, Any]
    private_ciphertext: bytes | None
    kek_id: str
    created_at: datetime
    retired_at: datetime | None = None
    removed_at: datetime | None = None


_COLUMNS = "kid, alg, public_jwk, private_ciphertext, kek_id, created_at, retired_at, removed_at"


def _record(row: asyncpg.Record) -> SigningKeyRecord:
    # The pool's codec decodes jsonb (api.db.pool); a bare connection hands back text.
    public_jwk = row["public_jwk"]
    if isinstance(public_jwk, str):
        public_jwk = json.loads(public_jwk)
    return SigningKeyRecord(
        kid=row["kid"],
        alg=row["alg"],
        public_jwk=public_jwk,
        private_ciphertext=row["private_ciphertext"],
        kek_id=row["kek_id"],
        created_at=row["created_at"],
        retired_at=row["retired_at"],
        removed_at=row["removed_at"],
    )


class SigningKeyRepository:
    """Signing-key lifecycle: active (signs) -> retired (verifies only) -> removed (RFC 9068 4)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self._conn = conn

    async def usable(self) -> list[SigningKeyRecord]:
        """Keys that still verify (active and retired), newest first."""
        rows = await self._conn.fetch(
            f"""SELECT {_COLUMNS} FROM signing_keys WHERE removed_at IS NULL
                ORDER BY created_at DESC, kid"""
        )
        return [_record(row) for row in rows]

    async def all(self) -> list[SigningKeyRecord]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid"
        )
        return [_record(row) for row in rows]

    async def rotate_in(self, key: SigningKeyRecord) -> SigningKeyRecord:
        """Retire the active key and make `key` the active one; run inside a transaction."""
        # Serialize concurrent rotations: the unique index would reject the loser anyway,
        # the lock turns that into a clean wait.
        await self._conn.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
        await self._conn.execute(
            "UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL"
        )
        try:
            row = await self._conn.fetchrow(
                f"""INSERT INTO signing_keys (kid, alg, public_jwk, private_ciphertext, kek_id)
                    VALUES ($1, $2, $3, $4, $5)
                    RETURNING {_COLUMNS}""",
                key.kid,
                key.alg,
                key.public_jwk,
                key.private_ciphertext,
                key.kek_id,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("a signing key with this id already exists") from None
        assert row is not None
        return _record(row)

    async def add_first(self, key: SigningKeyRecord) -> SigningKeyRecord | None:
        """Insert `key` as the active key unless one exists (replicas racing at start-up)."""
        row = await self._conn.fetchrow(
            f"""INSERT INTO signing_keys (kid, alg, public_jwk, private_ciphertext, kek_id)
                SELECT $1, $2, $3, $4, $5
                WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)
                ON CONFLICT DO NOTHING
                RETURNING {_COLUMNS}""",
            key.kid,
            key.alg,
            key.public_jwk,
            key.private_ciphertext,
            key.kek_id,
        )
        return _record(row) if row is not None else None

    async def remove(self, kid: str) -> SigningKeyRecord:
        """Stop verifying with a retired key and erase its private part; the active key stays."""
        row = await self._conn.fetchrow(
            f"""UPDATE signing_keys
                SET removed_at = coalesce(removed_at, now()), private_ciphertext = NULL
                WHERE kid = $1 AND retired_at IS NOT NULL
                RETURNING {_COLUMNS}""",
            kid,
        )
        if row is None:
            if await self._conn.fetchval("SELECT 1 FROM signing_keys WHERE kid = $1", kid):
                raise Conflict("the active signing key cannot be removed; rotate first")
            raise NotFound("SigningKey", kid)
        return _record(row)

    async def remove_retired_before(self, cutoff: datetime) -> list[str]:
        """Remove keys retired before `cutoff` (all tokens they signed have expired)."""
        rows = await self._conn.fetch(
            """UPDATE signing_keys SET removed_at = now(), private_ciphertext = NULL
               WHERE retired_at < $1 AND removed_at IS NULL
               RETURNING kid""",
            cutoff,
        )
        return [row["kid"] for row in rows]
