"""Staff accounts, console sessions and failed sign-ins over asyncpg."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from api.domain.staff import ConsoleSession, StaffRole, StaffUser

_COLUMNS = "u.id, u.organization_id, u.email, u.role, u.supporter_id, u.disabled_at, u.created_at"


def _user(row: asyncpg.Record) -> StaffUser:
    return StaffUser(
        id=row["id"],
        organization_id=row["organization_id"],
        email=row["email"],
        role=StaffRole(row["role"]),
        supporter_id=row["supporter_id"],
        disabled=row["disabled_at"] is not None,
        created_at=row["created_at"],
    )


class PostgresStaffRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(
        self,
        organization_id: UUID,
        email: str,
        role: StaffRole,
        supporter_id: UUID | None,
        password_hash: str,
    ) -> StaffUser:
        row = await self._db.fetchrow(
            "INSERT INTO staff_users AS u (organization_id, email, role, supporter_id, "
            f"password_hash) VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            organization_id,
            email,
            role.value,
            supporter_id,
            password_hash,
        )
        return _user(row)

    async def by_email(self, email: str) -> tuple[StaffUser, str] | None:
        """The account with this e-mail address (any case) and its password hash."""
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS}, u.password_hash FROM staff_users u "
            "WHERE lower(u.email) = lower($1)",
            email,
        )
        return None if row is None else (_user(row), row["password_hash"])

    async def list(self, organization_id: UUID | None) -> list[StaffUser]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM staff_users u "
            "WHERE $1::uuid IS NULL OR u.organization_id = $1 "
            "ORDER BY u.organization_id, lower(u.email)",
            organization_id,
        )
        return [_user(row) for row in rows]

    async def disable(self, user_id: UUID, at: datetime) -> None:
        await self._db.execute(
            "UPDATE staff_users SET disabled_at = coalesce(disabled_at, $2) WHERE id = $1",
            user_id,
            at,
        )
        await self._db.execute("DELETE FROM console_sessions WHERE user_id = $1", user_id)

    async def set_password(self, user_id: UUID, password_hash: str, at: datetime) -> None:
        await self._db.execute(
            "UPDATE staff_users SET password_hash = $2, password_changed_at = $3 WHERE id = $1",
            user_id,
            password_hash,
            at,
        )
        await self._db.execute("DELETE FROM console_sessions WHERE user_id = $1", user_id)

    # --- sessions ------------------------------------------------------------------------------

    async def add_session(
        self, token_hash: bytes, user_id: UUID, csrf_token: str, at: datetime
    ) -> None:
        await self._db.execute(
            "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at, "
            "last_seen_at) VALUES ($1, $2, $3, $4, $4)",
            token_hash,
            user_id,
            csrf_token,
            at,
        )

    async def session(self, token_hash: bytes) -> ConsoleSession | None:
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS}, s.csrf_token, s.created_at AS started, s.last_seen_at "
            "FROM console_sessions s JOIN staff_users u ON u.id = s.user_id "
            "WHERE s.token_hash = $1",
            token_hash,
        )
        if row is None:
            return None
        return ConsoleSession(_user(row), row["csrf_token"], row["started"], row["last_seen_at"])

    async def touch_session(self, token_hash: bytes, at: datetime) -> None:
        await self._db.execute(
            "UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1", token_hash, at
        )

    async def end_session(self, token_hash: bytes) -> None:
        await self._db.execute("DELETE FROM console_sessions WHERE token_hash = $1", token_hash)

    # --- failed sign-ins -----------------------------------------------------------------------

    async def failures_since(
        self, email_key: str, source_ip: str | None, since: datetime
    ) -> tuple[int, int]:
        """Failed sign-ins since `since`: for this e-mail address, and from this address."""
        row = await self._db.fetchrow(
            "SELECT count(*) FILTER (WHERE email_key = $1) AS by_email, "
            "count(*) FILTER (WHERE source_ip = $2) AS by_ip FROM console_login_failures "
            "WHERE failed_at > $3 AND (email_key = $1 OR source_ip = $2)",
            email_key,
            source_ip,
            since,
        )
        return int(row["by_email"]), int(row["by_ip"])

    async def add_failure(self, email_key: str, source_ip: str | None, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO console_login_failures (email_key, source_ip, failed_at) "
            "VALUES ($1, $2, $3)",
            email_key,
            source_ip,
            at,
        )

    async def clear_failures(self, email_key: str) -> None:
        await self._db.execute("DELETE FROM console_login_failures WHERE email_key = $1", email_key)

    # --- single sign-on flows in flight --------------------------------------------------------

    async def keep_sign_in_flow(self, key: str, data: str, expires_at: datetime) -> None:
        # Expired flows are few (ten minutes' worth): each new one sweeps them.
        await self._db.execute("DELETE FROM console_sign_in_flows WHERE expires_at < now()")
        await self._db.execute(
            "INSERT INTO console_sign_in_flows (flow_key, data, expires_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (flow_key) DO UPDATE SET data = $2, expires_at = $3",
            key,
            data,
            expires_at,
        )

    async def take_sign_in_flow(self, key: str, now: datetime) -> str | None:
        data: str | None = await self._db.fetchval(
            "DELETE FROM console_sign_in_flows WHERE flow_key = $1 RETURNING "
            "CASE WHEN expires_at > $2 THEN data END",
            key,
            now,
        )
        return data
