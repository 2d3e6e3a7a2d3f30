"""OAuth client registry and client-assertion replay store over asyncpg (0002_auth.sql)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.domain.errors import Conflict, Invalid, NotFound

AUTH_METHODS = ("private_key_jwt", "client_secret_basic")


@dataclass(frozen=True)
class ClientRecord:
    """One registered OAuth client; `jwks` is a public JWKS document, never a private key."""

    client_id: str
    organization_id: UUID
    name: str
    auth_method: str
    allowed_scopes: tuple[str, ...]
    default_scopes: tuple[str, ...]
    status: str
    created_at: datetime
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    secret_hash: str | None = None
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True)
class ClientStatus:
    """What request authentication needs per call: may this client act, and for whom."""

    active: bool
    organization_id: UUID


_COLUMNS = """client_id, organization_id, name, auth_method, jwks, jwks_uri, secret_hash,
    allowed_scopes, default_scopes, status, created_at, revoked_at"""


def _record(row: asyncpg.Record) -> ClientRecord:
    # The pool's codec decodes jsonb (api.db.pool); a bare connection hands back text.
    jwks = row["jwks"]
    if isinstance(jwks, str):
        jwks = json.loads(jwks)
    return ClientRecord(
        client_id=row["client_id"],
        organization_id=row["organization_id"],
        name=row["name"],
        auth_method=row["auth_method"],
        allowed_scopes=tuple(row["allowed_scopes"]),
        default_scopes=tuple(row["default_scopes"]),
        status=row["status"],
        created_at=row["created_at"],
        jwks=jwks,
        jwks_uri=row["jwks_uri"],
        secret_hash=row["secret_hash"],
        revoked_at=row["revoked_at"],
    )


class ClientRepository:
    """OAuth clients: registration, lookup, revocation (RFC 6749 2; SMART Backend Services)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self._conn = conn

    async def add(self, client: ClientRecord) -> ClientRecord:
        """Register a client; Conflict when the id is taken, NotFound for an unknown org."""
        try:
            row = await self._conn.fetchrow(
                f"""INSERT INTO oauth_clients (client_id, organization_id, name, auth_method, jwks,
                        jwks_uri, secret_hash, allowed_scopes, default_scopes)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                    RETURNING {_COLUMNS}""",
                client.client_id,
                client.organization_id,
                client.name,
                client.auth_method,
                client.jwks,
                client.jwks_uri,
                client.secret_hash,
                list(client.allowed_scopes),
                list(client.default_scopes),
            )
        # asyncpg's .detail echoes the key values: translate, never pass it on.
        except asyncpg.UniqueViolationError:
            raise Conflict("a client with this id already exists") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFound("Organization", client.organization_id) from None
        except asyncpg.CheckViolationError:
            raise Invalid("the client registration breaks a registry rule") from None
        assert row is not None
        return _record(row)

    async def get(self, client_id: str) -> ClientRecord | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM oauth_clients WHERE client_id = $1", client_id
        )
        return _record(row) if row is not None else None

    async def list(
        self, organization_id: UUID | None = None, include_revoked: bool = True
    ) -> list[ClientRecord]:
        rows = await self._conn.fetch(
            f"""SELECT {_COLUMNS} FROM oauth_clients
                WHERE ($1::uuid IS NULL OR organization_id = $1)
                  AND ($2 OR status = 'active')
                ORDER BY organization_id, client_id""",
            organization_id,
            include_revoked,
        )
        return [_record(row) for row in rows]

    async def revoke(self, client_id: str) -> ClientRecord:
        """Mark the client revoked (idempotent); NotFound when it was never registered."""
        row = await self._conn.fetchrow(
            f"""UPDATE oauth_clients
                SET status = 'revoked', revoked_at = coalesce(revoked_at, now())
                WHERE client_id = $1
                RETURNING {_COLUMNS}""",
            client_id,
        )
        if row is None:
            raise NotFound("Client", client_id)
        return _record(row)

    async def replace_jwks(self, client_id: str, jwks: dict[str, Any]) -> ClientRecord:
        """Register new public keys for a private_key_jwt client (the old ones stop working)."""
        row = await self._conn.fetchrow(
            f"""UPDATE oauth_clients SET jwks = $2
                WHERE client_id = $1 AND auth_method = 'private_key_jwt' AND jwks_uri IS NULL
                RETURNING {_COLUMNS}""",
            client_id,
            jwks,
        )
        if row is None:
            raise NotFound("Client", client_id)
        return _record(row)

    async def status(self, client_id: str) -> ClientStatus | None:
        """Whether the client and its organization may still act; None when unknown."""
        row = await self._conn.fetchrow(
            """SELECT c.status = 'active' AND o.active AS active, c.organization_id
               FROM oauth_clients c JOIN organizations o ON o.id = c.organization_id
               WHERE c.client_id = $1""",
            client_id,
        )
        if row is None:
            return None
        return ClientStatus(active=row["active"], organization_id=row["organization_id"])

    async def organization_active(self, organization_id: UUID) -> bool:
        """True when the organization exists and is active (external-issuer tokens name it)."""
        active = await self._conn.fetchval(
            "SELECT active FROM organizations WHERE id = $1", organization_id
        )
        return bool(active)


class AssertionReplayStore:
    """Client-assertion `jti`s remembered until expiry (SMART Backend Services; RFC 7523 3)."""

    def __init__(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        self._conn = conn

    async def remember(self, client_id: str, jti: str, expires_at: datetime) -> bool:
        """Record a first use; False when this client already used this `jti` (a replay)."""
        inserted = await self._conn.fetchval(
            """INSERT INTO oauth_assertion_jtis (client_id, jti, expires_at)
               VALUES ($1, $2, $3)
               ON CONFLICT (client_id, jti) DO NOTHING
               RETURNING true""",
            client_id,
            jti,
            expires_at,
        )
        return bool(inserted)

    async def purge_expired(self) -> int:
        """Forget `jti`s whose assertions can no longer be accepted anyway."""
        status: str = await self._conn.execute(
            "DELETE FROM oauth_assertion_jtis WHERE expires_at < now()"
        )
        return int(status.split()[-1])
