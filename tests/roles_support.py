"""A throw-away login role on the test server, granted the service role's rights on one test
database (`peerbridge db grant-service-role`), and a URL that logs in as it (trust auth)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from api.db.roles import grant_service_role


@dataclass(frozen=True)
class ServiceRole:
    name: str
    url: str  # the test database, logged in as the role


def url_as(url: str, user: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


@asynccontextmanager
async def service_role(database_url: str, *, grant: bool = True) -> AsyncIterator[ServiceRole]:
    name = f"pb_service_{secrets.token_hex(4)}"
    owner = await asyncpg.connect(database_url)
    try:
        await owner.execute(f"CREATE ROLE {name} LOGIN")
        try:
            if grant:
                await grant_service_role(owner, name)
            yield ServiceRole(name, url_as(database_url, name))
        finally:
            # Its sessions first: a role still connected cannot be dropped.
            await owner.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name
            )
            await owner.execute(f"DROP OWNED BY {name}")
            await owner.execute(f"DROP ROLE {name}")
    finally:
        await owner.close()
