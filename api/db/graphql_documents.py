"""GraphQL documents by SHA-256: Automatic Persisted Queries and the operators' allowlist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class StoredDocument:
    sha256: str
    document: str
    allowlisted: bool
    name: str | None = None
    created_at: datetime | None = None


async def find(db: asyncpg.Pool | asyncpg.Connection, sha256: str) -> StoredDocument | None:
    row = await db.fetchrow(
        "SELECT sha256, document, allowlisted FROM graphql_documents WHERE sha256 = $1", sha256
    )
    return None if row is None else StoredDocument(row[0], row[1], row[2])


async def remember(pool: asyncpg.Pool, sha256: str, document: str, keep: int) -> None:
    """Keep a client-registered document; past `keep` of them, the oldest go (one statement
    each, only when a new one was added: a known hash costs one INSERT that does nothing)."""
    async with pool.acquire() as connection:
        added = await connection.fetchval(
            "INSERT INTO graphql_documents (sha256, document) VALUES ($1, $2) "
            "ON CONFLICT (sha256) DO NOTHING RETURNING true",
            sha256,
            document,
        )
        if added:
            await connection.execute(
                "DELETE FROM graphql_documents WHERE sha256 IN ("
                "  SELECT sha256 FROM graphql_documents WHERE NOT allowlisted"
                "  ORDER BY created_at DESC, sha256 OFFSET $1)",
                keep,
            )


async def allowlist(pool: asyncpg.Pool, documents: list[StoredDocument]) -> int:
    """Add documents to the allowlist (one transaction); returns how many were new to it."""
    async with pool.acquire() as connection, connection.transaction():
        added = 0
        for found in documents:
            was = await connection.fetchval(
                "SELECT allowlisted FROM graphql_documents WHERE sha256 = $1", found.sha256
            )
            await connection.execute(
                "INSERT INTO graphql_documents (sha256, document, allowlisted, name) "
                "VALUES ($1, $2, true, $3) ON CONFLICT (sha256) DO UPDATE "
                "SET allowlisted = true, name = coalesce(EXCLUDED.name, graphql_documents.name)",
                found.sha256,
                found.document,
                found.name,
            )
            added += was is not True
        return added


async def allowlisted(pool: asyncpg.Pool) -> list[StoredDocument]:
    rows = await pool.fetch(
        "SELECT sha256, document, allowlisted, name, created_at FROM graphql_documents "
        "WHERE allowlisted ORDER BY name NULLS LAST, sha256"
    )
    return [StoredDocument(*row) for row in rows]
