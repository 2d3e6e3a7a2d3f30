"""App lifespan part: seal new audit rows into a signed checkpoint every
PEERBRIDGE_AUDIT_CHECKPOINT_INTERVAL_S seconds. Replicas may all run it: an advisory lock lets
one of them work each round, and the others skip it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from starlette.applications import Starlette

from api.auth.audit_seal import CheckpointSigning
from api.auth.runtime import AuthRuntime
from api.db.audit_evidence import PostgresAuditEvidenceStore
from api.services.audit_integrity import take_checkpoints
from api.settings import Settings

_log = logging.getLogger(__name__)


async def _checkpoint_every(
    interval: float, store: PostgresAuditEvidenceStore, signer: CheckpointSigning
) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await take_checkpoints(store, signer)
        except Exception as error:  # keep serving; the next round picks up where this stopped
            _log.warning("audit checkpoint failed (%s); retrying next round", type(error).__name__)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    interval = settings.audit_checkpoint_interval_s
    if interval <= 0:
        yield
        return
    runtime: AuthRuntime = app.state.auth
    task = asyncio.create_task(
        _checkpoint_every(
            interval,
            PostgresAuditEvidenceStore(app.state.pool),
            CheckpointSigning(runtime.keys, runtime.kek),
        ),
        name="audit-checkpoints",
    )
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
