"""Sealing the audit trail with signed checkpoints, and verifying it against them (issue 9).

Writers never wait for this: each audit row is hashed by the database as it is inserted, and
checkpoints are taken afterwards over whole ranges of writing transactions. Checkpoint n covers
the rows whose transaction id lies in [xid_from, xid_to), where xid_to is at most the oldest
transaction still running when it was taken. Transaction ids are handed out before a
transaction writes, and every transaction below that horizon has committed or aborted, so no
row can join a sealed range later, and a row whose transaction is still in flight (even one
holding an older id than rows already committed) lands in the next checkpoint instead of being
skipped. A long-running transaction anywhere on the server delays checkpoints; it never loses
rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from uuid import UUID

from api.domain.audit_evidence import (
    BatchComparison,
    CheckpointClaims,
    CheckpointRejected,
    Finding,
    FindingKind,
    ManifestEntry,
    SealedAuditRow,
    SignedClaims,
    StoredCheckpoint,
    checkpoint_digest,
    decode_manifest,
    encode_manifest,
    merkle_root,
)

_log = logging.getLogger(__name__)

# Rows per checkpoint: bounds the manifest (48 bytes a row) and the rows verify holds at once.
DEFAULT_MAX_ROWS = 10_000
_PAGE = 2_000


class AuditEvidence(Protocol):
    async def try_lock(self) -> bool: ...
    async def latest(self) -> StoredCheckpoint | None: ...
    async def horizon(self) -> tuple[int, datetime]:
        """The oldest transaction id still running, and the database's clock."""

    async def batch_end(self, xid_from: int, horizon: int, max_rows: int) -> int | None: ...
    async def rows(
        self, xid_from: int, xid_to: int | None, after: UUID | None, limit: int
    ) -> list[SealedAuditRow]: ...
    async def entries(self, xid_from: int, xid_to: int) -> list[ManifestEntry]:
        """What a checkpoint seals of the rows `rows` would give: their ids and hashes."""

    async def add(self, checkpoint: StoredCheckpoint) -> None: ...
    async def checkpoints(self, after_seq: int, limit: int) -> list[StoredCheckpoint]: ...


class AuditEvidenceStore(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AuditEvidence]: ...
    def snapshot(self) -> AbstractAsyncContextManager[AuditEvidence]:
        """A read-only view of one moment of the trail."""


class CheckpointSigner(Protocol):
    async def sign(self, claims: CheckpointClaims) -> SignedClaims: ...


class CheckpointVerifier(Protocol):
    def verify(self, checkpoint: StoredCheckpoint) -> CheckpointClaims:
        """The claims the signature vouches for; CheckpointRejected when it does not hold."""


async def take_checkpoints(
    store: AuditEvidenceStore, signer: CheckpointSigner, *, max_rows: int = DEFAULT_MAX_ROWS
) -> list[CheckpointClaims]:
    """Seal every finished, not yet sealed row, in checkpoints of at most `max_rows` rows.

    Returns what was sealed; empty when nothing was due or another process is checkpointing.
    """
    taken: list[CheckpointClaims] = []
    while True:
        async with store.transaction() as evidence:
            if not await evidence.try_lock():
                return taken
            sealed, caught_up = await _take_one(evidence, signer, max_rows)
        if sealed is None:
            return taken
        claims = sealed.claims
        _log.info(
            "audit checkpoint %s sealed %d rows",
            head_digest(claims.seq, sealed.signed.signature),
            claims.row_count,
        )
        taken.append(claims)
        if caught_up:
            return taken


async def _take_one(
    evidence: AuditEvidence, signer: CheckpointSigner, max_rows: int
) -> tuple[StoredCheckpoint | None, bool]:
    last = await evidence.latest()
    start = last.claims.xid_to if last else 0
    horizon, now = await evidence.horizon()
    end = await evidence.batch_end(start, horizon, max_rows) if horizon > start else None
    if end is None:
        return None, True
    # The hash taken at insert is what gets sealed: a row changed before this checkpoint stays
    # visibly changed to `verify`, instead of being vouched for in its changed form. Only ids
    # and hashes are read: the server seals every minute, between the requests it serves.
    entries = await evidence.entries(start, end)
    claims = CheckpointClaims(
        seq=last.claims.seq + 1 if last else 1,
        xid_from=start,
        xid_to=end,
        row_count=len(entries),
        root=merkle_root([entry.row_hash for entry in entries]),
        previous=last.digest if last else None,
        created_at=now,
    )
    sealed = StoredCheckpoint(claims, await signer.sign(claims), encode_manifest(entries))
    await evidence.add(sealed)
    return sealed, end == horizon


@dataclass
class VerificationReport:
    checkpoints: int = 0
    sealed_rows: int = 0
    unsealed_rows: int = 0
    head: StoredCheckpoint | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


async def verify_trail(
    store: AuditEvidenceStore,
    verifier: CheckpointVerifier,
    *,
    witnesses: Sequence[str] = (),
) -> VerificationReport:
    """Recompute every row's hash and every checkpoint's root, check every signature and link,
    and report each row altered, removed or inserted out of band, and each bad checkpoint.

    `witnesses` are `head_digest` values recorded earlier outside the database; each must
    still be in the chain (a rewritten or cut-off tail would otherwise go unnoticed).
    """
    report = VerificationReport()
    unseen = set(witnesses)
    async with store.snapshot() as evidence:
        previous: StoredCheckpoint | None = None
        while batch := await evidence.checkpoints(previous.claims.seq if previous else 0, 100):
            for checkpoint in batch:
                claims = _check_checkpoint(checkpoint, previous, verifier, report.findings)
                report.findings.extend(await _compare_rows(evidence, claims, checkpoint))
                report.sealed_rows += claims.row_count
                report.checkpoints += 1
                unseen.discard(head_digest(checkpoint.claims.seq, checkpoint.signed.signature))
                previous = checkpoint
        report.head = previous
        unsealed = BatchComparison(checkpoint=None, expected={})
        await _feed(evidence, unsealed, previous.claims.xid_to if previous else 0, None)
        report.findings.extend(unsealed.finish())
        report.unsealed_rows = unsealed.rows
    report.findings.extend(
        Finding(FindingKind.WITNESS_MISSING, f"{witness} is no longer in the chain")
        for witness in sorted(unseen)
    )
    return report


def _check_checkpoint(
    checkpoint: StoredCheckpoint,
    previous: StoredCheckpoint | None,
    verifier: CheckpointVerifier,
    findings: list[Finding],
) -> CheckpointClaims:
    """The claims to verify rows against: the signed ones when the signature holds."""
    seq = checkpoint.claims.seq
    try:
        claims = verifier.verify(checkpoint)
    except CheckpointRejected as rejected:
        findings.append(Finding(FindingKind.BAD_SIGNATURE, rejected.reason, seq))
        claims = checkpoint.claims
    else:
        if _comparable(claims) != _comparable(checkpoint.claims):
            altered = "columns differ from the signed claims"
            findings.append(Finding(FindingKind.CHECKPOINT_ALTERED, altered, seq))
    expected_link = (
        (previous.claims.seq + 1, previous.claims.xid_to, previous.digest)
        if previous
        else (1, 0, None)
    )
    if (claims.seq, claims.xid_from, claims.previous) != expected_link:
        findings.append(
            Finding(
                FindingKind.CHAIN_BROKEN,
                "does not follow the previous checkpoint (one is missing or replaced)",
                seq,
            )
        )
    return claims


def _comparable(claims: CheckpointClaims) -> tuple[object, ...]:
    return (claims.seq, claims.xid_from, claims.xid_to, claims.row_count, claims.root,
            claims.previous, claims.created_at)


async def _compare_rows(
    evidence: AuditEvidence, claims: CheckpointClaims, checkpoint: StoredCheckpoint
) -> list[Finding]:
    try:
        entries = decode_manifest(checkpoint.manifest)
    except ValueError:
        entries = []
    findings: list[Finding] = []
    hashes = [entry.row_hash for entry in entries]
    if len(entries) != claims.row_count or merkle_root(hashes) != claims.root:
        # The row-by-row comparison below then measures against a list no one signed.
        findings.append(
            Finding(FindingKind.CHECKPOINT_ALTERED, "manifest does not match the root",
                    claims.seq)
        )
    comparison = BatchComparison(claims.seq, {e.id: e.row_hash for e in entries})
    await _feed(evidence, comparison, claims.xid_from, claims.xid_to)
    return findings + comparison.finish()


async def _feed(
    evidence: AuditEvidence, comparison: BatchComparison, start: int, end: int | None
) -> None:
    after: UUID | None = None
    while page := await evidence.rows(start, end, after, _PAGE):
        for row in page:
            comparison.add(row)
        after = page[-1].event.id


def head_digest(seq: int, signature: str) -> str:
    """`<seq>:<digest hex>` of a checkpoint: recorded outside the database (the log line of
    each checkpoint, a SIEM), it lets `verify --witness` detect a later rewrite of the tail."""
    return f"{seq}:{checkpoint_digest(signature).hex()}"
