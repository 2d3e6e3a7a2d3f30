"""Client registry use cases: register, list, revoke (RFC 6749 2; SMART Backend Services).

https://hl7.org/fhir/smart-app-launch/backend-services.html#registering-a-smart-backend-service
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from api.auth import client_secrets
from api.auth.jwks import JWKSError, check_public_jwks, check_url
from api.db.clients import ClientRecord, ClientRepository
from api.domain.errors import Invalid
from api.domain.scopes import any_satisfies, names_a_resource_type, parse_scope, reordered


@dataclass(frozen=True)
class NewClient:
    """A registered client; `secret` is shown once and stored only as a hash."""

    client: ClientRecord
    secret: str | None = None


def _normalize_scopes(texts: Sequence[str], what: str) -> tuple[str, ...]:
    """The scopes in canonical form; a malformed one, or one naming no FHIR R4 resource type,
    is refused (a typo such as `ServiceRequests` would otherwise grant nothing, silently)."""
    normalized = []
    for text in texts:
        scope = parse_scope(text)
        if scope is None:
            hint = reordered(text)
            order = f" (permissions go in the order c r u d s: {hint})" if hint else ""
            raise Invalid(f"not a SMART v2 resource scope: {text}{order}", what)
        if not names_a_resource_type(scope):
            raise Invalid(
                f"no FHIR R4 resource type is called {scope.resource_type!r} (in {text})", what
            )
        normalized.append(str(scope))
    return tuple(dict.fromkeys(normalized))


def new_client_id() -> str:
    """A random URL-safe id that never starts with '-' (a command line would take it for an
    option: `peerbridge clients revoke -x...`)."""
    while (candidate := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return candidate


async def create_client(
    pool: asyncpg.Pool,
    *,
    organization_id: UUID,
    name: str,
    scopes: Sequence[str],
    default_scopes: Sequence[str] = (),
    jwks: dict[str, Any] | None = None,
    jwks_uri: str | None = None,
    client_id: str | None = None,
) -> NewClient:
    """Register a client: with a JWKS (document or URL) it authenticates by signed assertion
    (`private_key_jwt`), otherwise by a generated secret (`client_secret_basic`)."""
    allowed = _normalize_scopes(scopes, "scopes")
    if not allowed:
        raise Invalid("a client needs at least one allowed scope", "scopes")
    defaults = _normalize_scopes(default_scopes, "default_scopes")
    allowed_parsed = [scope for scope in map(parse_scope, allowed) if scope]
    for text in defaults:
        default = parse_scope(text)
        if default is None or not any_satisfies(allowed_parsed, default):
            raise Invalid(f"default scope {text} is not among the allowed scopes", "default_scopes")
    if jwks is not None and jwks_uri is not None:
        raise Invalid("register either a JWKS document or a JWKS URL, not both", "jwks")
    try:
        if jwks is not None:
            jwks = check_public_jwks(jwks)
        if jwks_uri is not None:
            check_url(jwks_uri)
    except JWKSError as error:
        raise Invalid(str(error), "jwks") from None
    secret = None
    secret_hash = None
    if jwks is None and jwks_uri is None:
        secret = client_secrets.generate_secret()
        # scrypt takes tens of milliseconds: keep it off the event loop.
        secret_hash = await asyncio.to_thread(client_secrets.hash_secret, secret)
    record = ClientRecord(
        client_id=client_id or new_client_id(),
        organization_id=organization_id,
        name=name,
        auth_method="client_secret_basic" if secret else "private_key_jwt",
        allowed_scopes=allowed,
        default_scopes=defaults,
        status="active",
        created_at=datetime.now(UTC),
        jwks=jwks,
        jwks_uri=jwks_uri,
        secret_hash=secret_hash,
    )
    async with pool.acquire() as conn:
        stored = await ClientRepository(conn).add(record)
    return NewClient(stored, secret)


async def list_clients(
    pool: asyncpg.Pool, organization_id: UUID | None = None, *, include_revoked: bool = True
) -> list[ClientRecord]:
    async with pool.acquire() as conn:
        return await ClientRepository(conn).list(organization_id, include_revoked)


async def revoke_client(pool: asyncpg.Pool, client_id: str) -> ClientRecord:
    """Revoke: the next token request fails at once; outstanding tokens fail on next use once
    each process's client-status cache expires (`client_status_ttl_seconds`, 5 s by default)."""
    async with pool.acquire() as conn:
        return await ClientRepository(conn).revoke(client_id)
