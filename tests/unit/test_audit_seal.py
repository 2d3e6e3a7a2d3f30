"""Checkpoint signatures: made with PeerBridge's signing key, accepted only from a key the
key-encryption key attests, never confused with an access token."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from joserfc.jwk import import_key

from api.auth import jws, kek, tokens
from api.auth.audit_seal import CHECKPOINT_TYP, CheckpointSigning, CheckpointVerification
from api.auth.keys import SigningKey, new_signing_key
from api.db.signing_keys import SigningKeyRecord
from api.domain.audit_evidence import CheckpointClaims, CheckpointRejected, StoredCheckpoint

CLAIMS = CheckpointClaims(1, 0, 900, 3, b"\x07" * 32, None, datetime(2026, 11, 29, tzinfo=UTC))


class _Ring:
    """The one method CheckpointSigning uses of SigningKeys."""

    def __init__(self, signer: SigningKey) -> None:
        self._signer = signer

    async def signer(self) -> SigningKey:
        return self._signer


def _key(key_encryption_key: kek.KeyEncryptionKey) -> tuple[SigningKeyRecord, SigningKey]:
    record = new_signing_key(key_encryption_key)
    assert record.private_ciphertext is not None
    der = key_encryption_key.open(record.private_ciphertext, record.kid.encode())
    return record, SigningKey(record.kid, record.alg, import_key(der, "RSA"))


@pytest.fixture(scope="module")
def the_kek() -> kek.KeyEncryptionKey:
    return kek.generate()


@pytest.fixture(scope="module")
def genuine(the_kek: kek.KeyEncryptionKey) -> tuple[SigningKeyRecord, SigningKey]:
    return _key(the_kek)


async def _signed(
    the_kek: kek.KeyEncryptionKey, key: SigningKey, claims: CheckpointClaims = CLAIMS
) -> StoredCheckpoint:
    signing = CheckpointSigning(_Ring(key), the_kek)  # type: ignore[arg-type]
    return StoredCheckpoint(claims, await signing.sign(claims), b"")


async def test_a_signed_checkpoint_verifies_to_its_claims(
    the_kek: kek.KeyEncryptionKey, genuine: tuple[SigningKeyRecord, SigningKey]
) -> None:
    record, key = genuine
    checkpoint = await _signed(the_kek, key)
    assert jws.parse(checkpoint.signed.signature).header["typ"] == CHECKPOINT_TYP
    assert CheckpointVerification([record], the_kek).verify(checkpoint) == CLAIMS


async def test_a_retired_and_removed_key_still_verifies_its_checkpoints(
    the_kek: kek.KeyEncryptionKey, genuine: tuple[SigningKeyRecord, SigningKey]
) -> None:
    record, key = genuine
    checkpoint = await _signed(the_kek, key)
    removed = replace(record, private_ciphertext=None, retired_at=CLAIMS.created_at,
                      removed_at=CLAIMS.created_at)
    assert CheckpointVerification([removed], the_kek).verify(checkpoint) == CLAIMS


async def test_a_key_planted_in_the_database_without_the_kek_is_not_accepted(
    the_kek: kek.KeyEncryptionKey, genuine: tuple[SigningKeyRecord, SigningKey]
) -> None:
    # A database superuser adds their own key and signs with it; they can seal an
    # attestation only under a key-encryption key of their own.
    record, key = genuine
    planted, planted_key = _key(kek.generate())
    forged = await _signed(kek.generate(), planted_key)
    with pytest.raises(CheckpointRejected, match="not attested"):
        CheckpointVerification([record, planted], the_kek).verify(forged)

    # Copying a genuine attestation does not help: it names the genuine key.
    genuine_checkpoint = await _signed(the_kek, key)
    copied = replace(forged, signed=replace(
        forged.signed, key_attestation=genuine_checkpoint.signed.key_attestation))
    with pytest.raises(CheckpointRejected, match="names another key"):
        CheckpointVerification([record, planted], the_kek).verify(copied)


async def test_changed_claims_break_the_signature(
    the_kek: kek.KeyEncryptionKey, genuine: tuple[SigningKeyRecord, SigningKey]
) -> None:
    record, key = genuine
    checkpoint = await _signed(the_kek, key)
    header, _, signature = checkpoint.signed.signature.split(".")
    claims = {**CLAIMS.to_json(), "row_count": 2}
    other_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    tampered = replace(checkpoint, signed=replace(
        checkpoint.signed, signature=f"{header}.{other_payload}.{signature}"))
    with pytest.raises(CheckpointRejected, match="bad signature"):
        CheckpointVerification([record], the_kek).verify(tampered)


async def test_a_stored_key_whose_kid_is_not_its_thumbprint_is_refused(
    the_kek: kek.KeyEncryptionKey, genuine: tuple[SigningKeyRecord, SigningKey]
) -> None:
    record, key = genuine
    checkpoint = await _signed(the_kek, key)
    other, _ = _key(the_kek)
    swapped = replace(record, public_jwk=other.public_jwk)
    with pytest.raises(CheckpointRejected, match="does not match its kid"):
        CheckpointVerification([swapped], the_kek).verify(checkpoint)


async def test_an_access_token_is_not_a_checkpoint_and_a_checkpoint_not_a_token(
    the_kek: kek.KeyEncryptionKey, genuine: tuple[SigningKeyRecord, SigningKey]
) -> None:
    record, key = genuine
    token, _ = tokens.mint(key, issuer="https://pb", audience="https://pb", client_id="c",
                           organization_id=uuid4(), scopes=(), now=1_800_000_000)
    checkpoint = await _signed(the_kek, key)
    as_checkpoint = replace(checkpoint, signed=replace(checkpoint.signed, signature=token))
    with pytest.raises(CheckpointRejected, match="wrong typ"):
        CheckpointVerification([record], the_kek).verify(as_checkpoint)

    async def find_key(kid: str) -> tuple[str, object]:
        return record.alg, import_key(dict(record.public_jwk))

    with pytest.raises(jws.TokenRejected, match="wrong typ"):
        await tokens.verify(jws.parse(checkpoint.signed.signature), find_key,  # type: ignore[arg-type]
                            issuer="https://pb", audience="https://pb", now=1, leeway=0)
