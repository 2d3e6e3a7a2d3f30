"""Create and drop whole databases on a server (test isolation, operator tooling)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# Names we generate ourselves; anything else is refused rather than quoted cleverly.
_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _identifier(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"not a safe database name: {name!r}")
    return f'"{name}"'


def url_for_database(url: str, name: str) -> str:
    """The same server and credentials as `url`, another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(
    admin: asyncpg.Connection, name: str, *, template: str | None = None
) -> None:
    """CREATE DATABASE, optionally as a copy of `template` (which must have no connections)."""
    sql = f"CREATE DATABASE {_identifier(name)}"
    if template is not None:
        sql += f" TEMPLATE {_identifier(template)}"
    await admin.execute(sql)


async def drop_database(admin: asyncpg.Connection, name: str) -> None:
    """DROP DATABASE, disconnecting whoever is still connected (PostgreSQL 13+)."""
    await admin.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")
