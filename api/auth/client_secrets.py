"""Client secrets for `client_secret_basic` (RFC 6749 2.3.1), stored only as scrypt hashes."""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import cache

# scrypt with n=2**14, r=8 (RFC 7914; OWASP's minimum): ~16 MiB and tens of ms per check,
# cheap for one token request every few minutes, expensive for anyone guessing offline.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_PREFIX = "scrypt"


def generate_secret() -> str:
    """256 bits from the OS CSPRNG, URL-safe so it survives Basic auth and shells unquoted."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, _N, _R, _P)
    return "$".join((_PREFIX, str(_N), str(_R), str(_P), _b64(salt), _b64(digest)))


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time comparison against a stored hash; False for any malformed hash."""
    try:
        prefix, n, r, p, salt, digest = stored.split("$")
        if prefix != _PREFIX:
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        actual = _scrypt(secret, base64.urlsafe_b64decode(salt + "=="), int(n), int(r), int(p))
    except ValueError:
        return False
    return secrets.compare_digest(actual, expected)


def burn_time(secret: str) -> None:
    """Spend a verification's time for an unknown client, so timing does not reveal client ids."""
    verify_secret(secret, _dummy_hash())


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES, maxmem=64 * 1024 * 1024
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@cache
def _dummy_hash() -> str:
    return hash_secret(secrets.token_urlsafe(16))
