"""Tamper evidence for the audit trail: the canonical row hash, the Merkle root over a batch of
rows, what a signed checkpoint claims, and what comparing the trail with its checkpoints finds.

The row hash is computed by the database at insert (`audit_row_hash` in
api/db/migrations/0010_audit_evidence.sql); verification recomputes it here, independently,
so a changed database function cannot vouch for changed rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from api.domain.audit import AuditEvent

ROW_HASH_PREFIX = b"peerbridge-audit-row-v1"
CHECKPOINT_FORMAT = "peerbridge-audit-checkpoint-v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MANIFEST_ENTRY_BYTES = 16 + 32  # uuid, sha256


@dataclass(frozen=True)
class SealedAuditRow:
    """An audit event as stored: the writing transaction's id and the hash taken at insert."""

    event: AuditEvent
    xid: int
    row_hash: bytes


def _field(value: str | None) -> bytes:
    if value is None:
        return b"~"
    encoded = value.encode("utf-8")
    return str(len(encoded)).encode("ascii") + b":" + encoded


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def canonical_row(event: AuditEvent, xid: int) -> bytes:
    """The v1 canonical serialisation (every column, length-prefixed, fixed order)."""
    record = event.record
    microseconds = (event.recorded_at - _EPOCH) // _MICROSECOND
    fields = (
        str(event.id),
        str(microseconds),
        str(xid),
        record.action.value,
        record.outcome.value,
        record.operation,
        record.resource_type,
        _text(record.resource_id),
        _text(record.patient_id),
        record.client_id,
        str(record.organization_id),
        record.subject,
        record.purpose,
        ",".join(str(consent) for consent in record.consent_ids),
        record.detail_code,
        record.source_ip,
        record.trace_id,
    )
    return ROW_HASH_PREFIX + b"".join(_field(value) for value in fields)


def row_hash(event: AuditEvent, xid: int) -> bytes:
    return hashlib.sha256(canonical_row(event, xid)).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 2.1 Merkle Tree Hash: leaves hashed with 0x00, inner nodes with 0x01."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        # Pairing left to right and lifting an odd last node unchanged gives the same tree as
        # RFC 6962's split at the largest power of two below n.
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


@dataclass(frozen=True)
class ManifestEntry:
    id: UUID
    row_hash: bytes


def encode_manifest(entries: Iterable[ManifestEntry]) -> bytes:
    return b"".join(entry.id.bytes + entry.row_hash for entry in entries)


def decode_manifest(data: bytes) -> list[ManifestEntry]:
    if len(data) % _MANIFEST_ENTRY_BYTES:
        raise ValueError("manifest length is not a whole number of entries")
    return [
        ManifestEntry(UUID(bytes=data[i : i + 16]), data[i + 16 : i + _MANIFEST_ENTRY_BYTES])
        for i in range(0, len(data), _MANIFEST_ENTRY_BYTES)
    ]


@dataclass(frozen=True)
class CheckpointClaims:
    """What checkpoint `seq` attests: the rows written by transactions in [xid_from, xid_to)
    number `row_count` and have Merkle root `root`; `previous` is the digest of checkpoint
    seq - 1 (None for the first), so checkpoints form a chain."""

    seq: int
    xid_from: int
    xid_to: int
    row_count: int
    root: bytes
    previous: bytes | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "seq": self.seq,
            "xid_from": self.xid_from,
            "xid_to": self.xid_to,
            "row_count": self.row_count,
            "root": self.root.hex(),
            "previous": self.previous.hex() if self.previous is not None else None,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
        }

    @classmethod
    def from_json(cls, claims: Mapping[str, Any]) -> CheckpointClaims:
        """Parse a signed payload; ValueError when it is not a v1 checkpoint."""
        if claims.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a v1 audit checkpoint")
        numbers = [claims.get(name) for name in ("seq", "xid_from", "xid_to", "row_count")]
        if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers):
            raise ValueError("checkpoint numbers are not integers")
        root, previous, created_at = claims.get("root"), claims.get("previous"), claims.get(
            "created_at"
        )
        if not isinstance(root, str) or not isinstance(created_at, str):
            raise ValueError("checkpoint root or time missing")
        if previous is not None and not isinstance(previous, str):
            raise ValueError("checkpoint previous is not a digest")
        return cls(
            seq=int(claims["seq"]),
            xid_from=int(claims["xid_from"]),
            xid_to=int(claims["xid_to"]),
            row_count=int(claims["row_count"]),
            root=bytes.fromhex(root),
            previous=bytes.fromhex(previous) if previous is not None else None,
            created_at=datetime.fromisoformat(created_at),
        )


@dataclass(frozen=True)
class SignedClaims:
    """A signature over the claims: the signing key's id, the compact JWS, and the key's
    attestation by the key-encryption key."""

    kid: str
    signature: str
    key_attestation: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint row as read back: the columns, and the signature that vouches for them."""

    claims: CheckpointClaims  # from the columns, not yet checked against the signature
    signed: SignedClaims
    manifest: bytes

    @property
    def digest(self) -> bytes:
        return checkpoint_digest(self.signed.signature)


def checkpoint_digest(signature: str) -> bytes:
    """The link the next checkpoint names as `previous`: SHA-256 over the compact JWS."""
    return hashlib.sha256(signature.encode("ascii")).digest()


class CheckpointRejected(Exception):
    """A checkpoint's signature does not hold; `reason` says which check failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FindingKind(StrEnum):
    ROW_ALTERED = "row altered"
    ROW_REMOVED = "row removed"
    ROW_INSERTED = "row inserted out of band"
    BAD_SIGNATURE = "checkpoint signature invalid"
    CHECKPOINT_ALTERED = "checkpoint altered"
    CHAIN_BROKEN = "checkpoint chain broken"
    WITNESS_MISSING = "witnessed checkpoint missing"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    detail: str
    checkpoint: int | None = None  # seq
    row_id: UUID | None = None

    def __str__(self) -> str:
        where = [f"checkpoint {self.checkpoint}"] if self.checkpoint is not None else []
        if self.row_id is not None:
            where.append(f"row {self.row_id}")
        return f"{self.kind}: {', '.join(where)}: {self.detail}" if where else (
            f"{self.kind}: {self.detail}"
        )


@dataclass
class BatchComparison:
    """Rows of one checkpoint's range, compared one at a time with its manifest."""

    checkpoint: int | None
    expected: dict[UUID, bytes]  # manifest: id -> row hash sealed at checkpoint time
    findings: list[Finding] = field(default_factory=list)
    rows: int = 0
    _seen: set[UUID] = field(default_factory=set)

    def add(self, row: SealedAuditRow) -> None:
        self.rows += 1
        event_id = row.event.id
        recomputed = row_hash(row.event, row.xid)
        sealed = self.expected.get(event_id)
        if self.checkpoint is not None and sealed is None:
            self._report(FindingKind.ROW_INSERTED, row, "not in the checkpoint's manifest")
            return
        self._seen.add(event_id)
        if sealed is not None and recomputed != sealed:
            self._report(FindingKind.ROW_ALTERED, row, "columns differ from the sealed hash")
        elif recomputed != row.row_hash:
            detail = "stored row_hash changed" if sealed else "columns differ from the insert hash"
            self._report(FindingKind.ROW_ALTERED, row, detail)

    def finish(self) -> list[Finding]:
        for missing in sorted(self.expected.keys() - self._seen):
            self.findings.append(
                Finding(FindingKind.ROW_REMOVED, "sealed but missing", self.checkpoint, missing)
            )
        return self.findings

    def _report(self, kind: FindingKind, row: SealedAuditRow, detail: str) -> None:
        self.findings.append(Finding(kind, detail, self.checkpoint, row.event.id))
