"""The pure parts of the audit trail's tamper evidence: canonical row hash, RFC 6962 Merkle
root, manifests, checkpoint claims, and the row-by-row comparison verify relies on."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.audit import AuditAction, AuditEvent, AuditOutcome, AuditRecord
from api.domain.audit_evidence import (
    BatchComparison,
    CheckpointClaims,
    FindingKind,
    ManifestEntry,
    SealedAuditRow,
    canonical_row,
    decode_manifest,
    encode_manifest,
    merkle_root,
    row_hash,
)

RECORDED = datetime(2026, 11, 29, 12, 30, 15, 123456, tzinfo=UTC)


def _event(**changes: object) -> AuditEvent:
    record = AuditRecord(
        action=AuditAction.READ,
        outcome=AuditOutcome.SUCCESS,
        operation="readPatient",
        resource_type="Patient",
        resource_id=UUID("00000000-0000-4000-8000-000000000001"),
        patient_id=UUID("00000000-0000-4000-8000-000000000001"),
        client_id="client-a",
        organization_id=UUID("00000000-0000-4000-8000-0000000000aa"),
        subject="client-a",
    )
    return AuditEvent(id=uuid4(), recorded_at=RECORDED, record=replace(record, **changes))


def _rfc6962(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 as written: split at the largest power of two smaller than n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _rfc6962(leaves[:k]) + _rfc6962(leaves[k:])).digest()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 100])
def test_merkle_root_is_the_rfc_6962_tree_hash(n: int) -> None:
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(n)]
    assert merkle_root(leaves) == _rfc6962(leaves)


def test_merkle_root_depends_on_every_leaf_and_its_place() -> None:
    leaves = [bytes([i]) * 32 for i in range(5)]
    swapped = [leaves[1], leaves[0], *leaves[2:]]
    assert merkle_root(swapped) != merkle_root(leaves)
    assert merkle_root(leaves[:4]) != merkle_root(leaves)


def test_canonical_row_length_prefixes_every_column_so_shifted_text_differs() -> None:
    a = _event(subject="ab", purpose="c")
    b = replace(a, record=replace(a.record, subject="a", purpose="bc"))
    assert canonical_row(a, 7) != canonical_row(b, 7)


def test_canonical_row_tells_a_missing_value_from_an_empty_one() -> None:
    a = _event(purpose=None)
    b = replace(a, record=replace(a.record, purpose=""))
    assert row_hash(a, 7) != row_hash(b, 7)


def test_row_hash_covers_time_to_the_microsecond_and_the_transaction() -> None:
    event = _event()
    later = replace(event, recorded_at=event.recorded_at.replace(microsecond=123457))
    assert row_hash(event, 7) != row_hash(later, 7)
    assert row_hash(event, 7) != row_hash(event, 8)


def test_row_hash_is_the_same_instant_in_any_time_zone() -> None:
    event = _event()
    elsewhere = replace(event, recorded_at=event.recorded_at.astimezone(
        datetime.fromisoformat("2026-01-01T00:00:00-05:00").tzinfo))
    assert row_hash(event, 7) == row_hash(elsewhere, 7)


@given(st.lists(st.binary(min_size=32, max_size=32), max_size=20))
def test_a_manifest_round_trips(hashes: list[bytes]) -> None:
    entries = [ManifestEntry(uuid4(), h) for h in hashes]
    assert decode_manifest(encode_manifest(entries)) == entries


def test_a_truncated_manifest_is_refused() -> None:
    data = encode_manifest([ManifestEntry(uuid4(), b"\x01" * 32)])
    with pytest.raises(ValueError):
        decode_manifest(data[:-1])


def test_checkpoint_claims_round_trip_through_json() -> None:
    claims = CheckpointClaims(3, 100, 250, 12, b"\x02" * 32, b"\x03" * 32, RECORDED)
    assert CheckpointClaims.from_json(claims.to_json()) == claims
    first = replace(claims, seq=1, previous=None)
    assert CheckpointClaims.from_json(first.to_json()) == first


@pytest.mark.parametrize(
    "change",
    [{"format": "other"}, {"seq": True}, {"xid_to": "250"}, {"root": None}, {"previous": 5}],
)
def test_claims_that_are_not_a_v1_checkpoint_are_refused(change: dict[str, object]) -> None:
    claims = CheckpointClaims(3, 100, 250, 12, b"\x02" * 32, None, RECORDED).to_json()
    with pytest.raises(ValueError):
        CheckpointClaims.from_json({**claims, **change})


def _sealed(event: AuditEvent, xid: int = 5) -> SealedAuditRow:
    return SealedAuditRow(event, xid, row_hash(event, xid))


def test_comparison_names_each_altered_removed_and_inserted_row() -> None:
    kept, altered, removed, inserted = (_sealed(_event()) for _ in range(4))
    comparison = BatchComparison(
        checkpoint=1,
        expected={r.event.id: r.row_hash for r in (kept, altered, removed)},
    )
    changed_event = replace(
        altered.event, record=replace(altered.event.record, organization_id=uuid4())
    )
    for row in (kept, replace(altered, event=changed_event), inserted):
        comparison.add(row)

    found = {(f.kind, f.row_id) for f in comparison.finish()}
    assert found == {
        (FindingKind.ROW_ALTERED, altered.event.id),
        (FindingKind.ROW_REMOVED, removed.event.id),
        (FindingKind.ROW_INSERTED, inserted.event.id),
    }


def test_a_row_altered_together_with_its_stored_hash_still_differs_from_the_seal() -> None:
    row = _sealed(_event())
    comparison = BatchComparison(checkpoint=1, expected={row.event.id: row.row_hash})
    forged = replace(row.event, record=replace(row.event.record, outcome=AuditOutcome.DENIED))
    comparison.add(_sealed(forged))
    [finding] = comparison.finish()
    assert (finding.kind, finding.row_id) == (FindingKind.ROW_ALTERED, row.event.id)


def test_unsealed_rows_are_checked_against_their_insert_hash() -> None:
    row = _sealed(_event())
    comparison = BatchComparison(checkpoint=None, expected={})
    comparison.add(row)
    forged = replace(row.event, record=replace(row.event.record, subject="someone else"))
    comparison.add(replace(row, event=forged))
    [finding] = comparison.finish()
    assert finding.kind is FindingKind.ROW_ALTERED and finding.checkpoint is None
    assert comparison.rows == 2
