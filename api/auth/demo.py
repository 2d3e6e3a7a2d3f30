"""Demo OAuth clients: one SMART backend client per demo organization, keys in the data dir.

Called by `peerbridge demo` after the demo network exists; idempotent like the rest of it.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import asyncpg
from joserfc.jwk import ECKey

from api.auth.clients import create_client
from api.db.clients import ClientRepository

DEMO_SCOPES = ("system/*.cruds",)
DEMO_KEY_DIR = "demo-clients"


@dataclass(frozen=True)
class DemoClient:
    organization_name: str
    organization_id: UUID
    client_id: str
    key_path: Path


def _client_id(organization_id: UUID) -> str:
    # Derived from the organization, so re-running the demo finds the same client.
    return f"demo-{organization_id.hex[:12]}"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


async def register_demo_clients(
    pool: asyncpg.Pool, organizations: Iterable[tuple[str, UUID]], data_dir: Path
) -> list[DemoClient]:
    """Ensure each organization has an ES384 demo client whose private JWK is in the data dir."""
    registered = []
    for name, organization_id in organizations:
        client_id = _client_id(organization_id)
        key_path = data_dir / DEMO_KEY_DIR / f"{client_id}.jwk.json"
        async with pool.acquire() as conn:
            existing = await ClientRepository(conn).get(client_id)
        if existing is None or not key_path.exists():
            key = ECKey.generate_key("P-384", parameters={"kid": f"{client_id}-1"})
            jwks = {"keys": [dict(key.as_dict(private=False))]}
            if existing is None:
                await create_client(pool, organization_id=organization_id,
                                    name=f"Demo client of {name}", scopes=DEMO_SCOPES,
                                    jwks=jwks, client_id=client_id)
            else:
                # The data dir was reset but the database kept the client: re-key it.
                async with pool.acquire() as conn:
                    await ClientRepository(conn).replace_jwks(client_id, jwks)
            _write_private(key_path, json.dumps(dict(key.as_dict(private=True))))
        registered.append(DemoClient(name, organization_id, client_id, key_path))
    return registered


def describe_demo_clients(clients: Iterable[DemoClient], base_url: str) -> str:
    """Copy-paste commands: get a token as a demo organization, then call FHIR and GraphQL."""
    clients = list(clients)
    lines = ["demo clients (SMART Backend Services, ES384 keys in the data directory):"]
    lines += [f"  {c.client_id}  {c.organization_name}" for c in clients]
    if clients:
        first = clients[0]
        token = (f"peerbridge clients token --client-id {shlex.quote(first.client_id)} "
                 f"--key {shlex.quote(str(first.key_path))} --url {shlex.quote(base_url)}")
        lines += [
            "try it (as the first organization; swap the client id and key for another):",
            f"  TOKEN=$({token})",
            f'  curl -s -H "Authorization: Bearer $TOKEN" "{base_url}/fhir/Task?_count=5"',
            f'  curl -s -H "Authorization: Bearer $TOKEN" -H "content-type: application/json" '
            f"-d '{{\"query\": \"{{ viewer {{ clientId scopes }} }}\"}}' {base_url}/graphql",
        ]
    return "\n".join(lines)
