"""Key material at rest: the key-encryption key (AES-256-GCM) and client-secret hashes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.auth import client_secrets, kek


def test_sealed_data_opens_only_with_the_same_key_and_context() -> None:
    key = kek.generate()
    sealed = key.seal(b"private key bytes", b"kid-1")
    assert b"private key bytes" not in sealed
    assert key.open(sealed, b"kid-1") == b"private key bytes"
    with pytest.raises(kek.KeyEncryptionError):
        key.open(sealed, b"kid-2")  # a row's ciphertext pasted under another kid
    with pytest.raises(kek.KeyEncryptionError):
        kek.generate().open(sealed, b"kid-1")


def test_each_seal_uses_a_fresh_nonce() -> None:
    key = kek.generate()
    assert key.seal(b"x", b"k") != key.seal(b"x", b"k")


def test_the_environment_key_is_base64_with_or_without_padding() -> None:
    key = kek.generate()
    encoded = key.encoded()
    assert kek.decode(encoded) == key
    assert kek.decode(encoded + "=") == key
    assert kek.load(encoded, Path("/nonexistent")) == key
    with pytest.raises(kek.KeyEncryptionError):
        kek.decode("too-short")
    with pytest.raises(kek.KeyEncryptionError):
        kek.decode("!!not base64!!")


def test_the_key_id_is_stable_and_does_not_reveal_the_key() -> None:
    key = kek.generate()
    assert key.kek_id == kek.decode(key.encoded()).kek_id
    assert key.kek_id not in key.encoded() and key.secret.hex()[:16] != key.kek_id
    assert key.encoded() not in repr(key) and key.secret.hex() not in repr(key)


def test_the_generated_key_file_is_private_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = kek.load(None, data_dir)
    path = data_dir / kek.KEK_FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert kek.load(None, data_dir) == first


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    kek.load(None, tmp_path)
    os.chmod(tmp_path / kek.KEK_FILE_NAME, 0o644)
    with pytest.raises(kek.KeyEncryptionError, match="chmod 600"):
        kek.load(None, tmp_path)


def test_client_secrets_are_hashed_and_checked_in_constant_time() -> None:
    secret = client_secrets.generate_secret()
    stored = client_secrets.hash_secret(secret)
    assert secret not in stored and stored.startswith("scrypt$")
    assert client_secrets.verify_secret(secret, stored)
    assert not client_secrets.verify_secret(secret + "x", stored)
    assert not client_secrets.verify_secret(secret, "plain-text-is-never-accepted")
    assert not client_secrets.verify_secret(secret, "scrypt$1$2$3$%%%$%%%")
    assert client_secrets.hash_secret(secret) != stored  # salted
    client_secrets.burn_time(secret)


def test_processes_starting_together_share_one_complete_key_file(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = list(pool.map(lambda _: kek.load(None, tmp_path).encoded(), range(16)))
    assert len(set(keys)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [kek.KEK_FILE_NAME], "no drafts left behind"
