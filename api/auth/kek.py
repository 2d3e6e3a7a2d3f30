"""The key-encryption key that wraps signing keys at rest (AES-256-GCM, NIST SP 800-38D)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_FILE_NAME = "key-encryption-key"
_NONCE_BYTES = 12


class KeyEncryptionError(Exception):
    """The key-encryption key is missing, malformed, unsafe, or not the one data was sealed with."""


@dataclass(frozen=True)
class KeyEncryptionKey:
    """A 256-bit AES-GCM key; `kek_id` is a public fingerprint naming it in stored rows."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != 32:
            raise KeyEncryptionError("the key-encryption key must be 32 bytes (base64url)")

    @property
    def kek_id(self) -> str:
        # Domain-separated hash: the fingerprint reveals nothing usable about the key.
        return hashlib.sha256(b"peerbridge-kek-id:" + self.secret).hexdigest()[:16]

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        """Encrypt; `context` (the kid) is bound as associated data so rows cannot be swapped."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self.secret).encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        try:
            nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
            return AESGCM(self.secret).decrypt(nonce, ciphertext, context)
        except InvalidTag:
            raise KeyEncryptionError("ciphertext does not open under this key") from None

    def encoded(self) -> str:
        return base64.urlsafe_b64encode(self.secret).decode().rstrip("=")


def generate() -> KeyEncryptionKey:
    return KeyEncryptionKey(secrets.token_bytes(32))


def decode(text: str) -> KeyEncryptionKey:
    """Read a base64url (or standard base64) 32-byte key, padding optional."""
    value = text.strip()
    try:
        raw = base64.urlsafe_b64decode(
            value.replace("+", "-").replace("/", "_") + "=" * (-len(value) % 4)
        )
    except (binascii.Error, ValueError):
        raise KeyEncryptionError("the key-encryption key is not base64") from None
    return KeyEncryptionKey(raw)


def load(configured: str | None, data_dir: Path) -> KeyEncryptionKey:
    """The key from PEERBRIDGE_KEY_ENCRYPTION_KEY, else the data directory's (created on first use).

    The generated file suits one machine (the embedded default); replicas sharing a database
    must all be given the same key through the environment.
    """
    if configured:
        return decode(configured)
    return _load_or_create_file(data_dir / KEK_FILE_NAME)


def _load_or_create_file(path: Path) -> KeyEncryptionKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return _read_file(path)
    key = generate()
    # Written whole under a private name, then linked into place: link() fails if the name
    # exists, so of two processes starting together one key wins and the other reads it
    # complete (never an empty file caught between create and write).
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key.encoded() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)
    except FileExistsError:
        return _read_file(path)
    finally:
        draft.unlink(missing_ok=True)
    return key


def _read_file(path: Path) -> KeyEncryptionKey:
    mode = path.stat().st_mode
    # Like ssh with a private key: refuse a key others could read rather than use it.
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyEncryptionError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    text = path.read_text().strip()
    if not text:
        raise KeyEncryptionError(f"{path} is empty")
    return decode(text)
