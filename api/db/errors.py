"""Translate asyncpg errors into domain errors. Their `.detail` echoes data values (PHI, keys):
it never leaves this module."""

from __future__ import annotations

import asyncpg

from api.domain.errors import Conflict, DomainError, Invalid


def translate(error: asyncpg.PostgresError) -> DomainError | None:
    """The domain error a constraint violation means, or None for a genuine fault."""
    if isinstance(error, asyncpg.UniqueViolationError):
        return Conflict("a record with the same unique fields already exists")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return Invalid("refers to a record that does not exist")
    if isinstance(error, asyncpg.CheckViolationError):
        return Invalid("a value is outside what the record allows")
    if isinstance(error, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return Conflict("a concurrent change collided with this one; retry")
    return None
