"""Signing and checking audit checkpoints with PeerBridge's own signing keys.

A checkpoint is a compact JWS (typ `peerbridge-audit-checkpoint+json`, so it can never pass
for an access token, nor a token for a checkpoint) signed by the active signing key, whose
private part is sealed at rest with the key-encryption key (KEK). The public half stays in
`signing_keys` after a key is retired or removed, so old checkpoints keep verifying.

Someone with database superuser rights but without the KEK can add a key of their own to
`signing_keys` and sign a forged checkpoint with it. So every checkpoint also carries a
key attestation: the kid sealed with the KEK (AES-GCM, authenticated). Verification accepts
a signature only from a key whose kid is the RFC 7638 thumbprint of its stored public key and
whose attestation opens under the KEK; copying a genuine attestation does not help a forger,
who would still need that key's private half.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from joserfc import jws as jose_jws
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from api.auth import jws
from api.auth.kek import KeyEncryptionError, KeyEncryptionKey
from api.auth.keys import SigningKeys
from api.db.signing_keys import SigningKeyRecord
from api.domain.audit_evidence import (
    CheckpointClaims,
    CheckpointRejected,
    SignedClaims,
    StoredCheckpoint,
)

CHECKPOINT_TYP = "peerbridge-audit-checkpoint+json"
_ATTESTATION_CONTEXT = b"peerbridge-audit-checkpoint-key"


class CheckpointSigning:
    """Signs checkpoint claims with whichever key the shared ring has active now."""

    def __init__(self, keys: SigningKeys, kek: KeyEncryptionKey) -> None:
        self._keys = keys
        self._kek = kek

    async def sign(self, claims: CheckpointClaims) -> SignedClaims:
        signer = await self._keys.signer()
        header = {"alg": signer.alg, "typ": CHECKPOINT_TYP, "kid": signer.kid}
        payload = json.dumps(claims.to_json(), separators=(",", ":"), sort_keys=True)
        compact = jose_jws.serialize_compact(
            header, payload, signer.private, algorithms=[signer.alg]
        )
        attestation = self._kek.seal(signer.kid.encode(), _ATTESTATION_CONTEXT)
        return SignedClaims(kid=signer.kid, signature=compact, key_attestation=attestation)


class CheckpointVerification:
    """Checks checkpoints against the stored public keys and the KEK (no private key needed)."""

    def __init__(self, keys: Sequence[SigningKeyRecord], kek: KeyEncryptionKey) -> None:
        self._keys = {record.kid: record for record in keys}
        self._kek = kek

    def verify(self, checkpoint: StoredCheckpoint) -> CheckpointClaims:
        try:
            jwt = jws.parse(checkpoint.signed.signature)
            jws.check_header(jwt, jws.ASYMMETRIC_ALGORITHMS, {CHECKPOINT_TYP})
        except jws.TokenRejected as rejected:
            raise CheckpointRejected(rejected.reason) from None
        if jwt.kid != checkpoint.signed.kid:
            raise CheckpointRejected("kid column differs from the signed header")
        record = self._keys.get(jwt.kid)
        if record is None:
            raise CheckpointRejected("signed by an unknown key")
        self._check_key(record, checkpoint.signed.key_attestation)
        if record.alg != jwt.alg:
            raise CheckpointRejected("algorithm differs from the key's")
        try:
            jws.verify_signature(jwt, import_key(dict(record.public_jwk)))
        except (jws.TokenRejected, JoseError, ValueError):
            raise CheckpointRejected("bad signature") from None
        try:
            return CheckpointClaims.from_json(jwt.claims)
        except (ValueError, TypeError):
            raise CheckpointRejected("payload is not a v1 checkpoint") from None

    def _check_key(self, record: SigningKeyRecord, attestation: bytes) -> None:
        try:
            thumbprint = import_key(dict(record.public_jwk)).thumbprint()
        except (JoseError, ValueError, TypeError):
            raise CheckpointRejected("stored public key is malformed") from None
        if thumbprint != record.kid:
            raise CheckpointRejected("stored public key does not match its kid")
        try:
            attested = self._kek.open(attestation, _ATTESTATION_CONTEXT)
        except (KeyEncryptionError, ValueError):
            raise CheckpointRejected(
                "key not attested by this key-encryption key (is PEERBRIDGE_KEY_ENCRYPTION_KEY "
                "the one serve uses?)"
            ) from None
        if attested != record.kid.encode():
            raise CheckpointRejected("key attestation names another key")
