"""App lifespan part: the audit trail's upkeep while `serve` runs.

- Seal new audit rows into a signed checkpoint every PEERBRIDGE_AUDIT_CHECKPOINT_INTERVAL_S
  seconds. Replicas may all run it: an advisory lock lets one of them work each round, and the
  others skip it.
- Keep the trail's month partitions created PEERBRIDGE_AUDIT_PARTITION_MONTHS_AHEAD months
  ahead: at start, then every AUDIT_PARTITION_ROUND_S. The database function serialises
  replicas; a round that fails (say, its lock wait timed out) changes nothing, and rows never
  wait for it: without their month's partition they go to the DEFAULT partition.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette

from api.auth.audit_seal import CheckpointSigning
from api.auth.runtime import AuthRuntime
from api.db.audit_evidence import PostgresAuditEvidenceStore
from api.db.audit_partitions import create_ahead
from api.periodic import Periodic, running
from api.services.audit_integrity import take_checkpoints
from api.settings import Settings

AUDIT_PARTITION_ROUND_S = 6 * 3600.0

_log = logging.getLogger(__name__)


async def _create_partitions(pool: asyncpg.Pool, months_ahead: int) -> None:
    async with pool.acquire() as conn:
        created = await create_ahead(conn, months_ahead)
    if created:
        _log.info("audit partitions created: %s", ", ".join(created))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    pool: asyncpg.Pool = app.state.pool
    months_ahead = settings.audit_partition_months_ahead
    loops = [
        Periodic(
            "audit partition round",
            AUDIT_PARTITION_ROUND_S,
            lambda: _create_partitions(pool, months_ahead),
        )
    ]
    interval = settings.audit_checkpoint_interval_s
    if interval > 0:
        runtime: AuthRuntime = app.state.auth
        store = PostgresAuditEvidenceStore(pool)
        signer = CheckpointSigning(runtime.keys, runtime.kek)
        loops.append(
            Periodic(
                "audit checkpoint", interval, lambda: _checkpoint(store, signer), first_now=False
            )
        )
    async with running(*loops):
        yield


async def _checkpoint(store: PostgresAuditEvidenceStore, signer: CheckpointSigning) -> None:
    await take_checkpoints(store, signer)
