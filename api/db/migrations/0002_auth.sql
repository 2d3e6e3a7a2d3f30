-- PeerBridge OAuth: client registry, client-assertion replay store, access-token signing keys.
-- Runs on PostgreSQL 15 and 18.

-- One row per OAuth client (RFC 6749 2, SMART Backend Services registration).
-- A private_key_jwt client registers either a JWKS document or a JWKS URL (never both);
-- a client_secret_basic client stores only a slow-KDF hash of its secret.
CREATE TABLE oauth_clients (
    client_id        text PRIMARY KEY CHECK (client_id ~ '^[A-Za-z0-9._~-]{8,100}$'),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    auth_method      text NOT NULL CHECK (auth_method IN ('private_key_jwt', 'client_secret_basic')),
    jwks             jsonb,
    jwks_uri         text CHECK (jwks_uri ~ '^https?://'),
    secret_hash      text,
    allowed_scopes   text[] NOT NULL CHECK (cardinality(allowed_scopes) > 0),
    default_scopes   text[] NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    revoked_at       timestamptz,
    CHECK (
        (auth_method = 'private_key_jwt' AND secret_hash IS NULL
            AND (jwks IS NULL) <> (jwks_uri IS NULL))
        OR (auth_method = 'client_secret_basic' AND secret_hash IS NOT NULL
            AND jwks IS NULL AND jwks_uri IS NULL)
    ),
    CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
);
CREATE INDEX oauth_clients_org ON oauth_clients (organization_id, client_id);

-- Client-assertion `jti`s seen, kept until the assertion expires so a replay fails
-- (SMART Backend Services; RFC 7523 3 item 7). The primary key makes "first use wins" atomic
-- across replicas.
CREATE TABLE oauth_assertion_jtis (
    client_id   text NOT NULL,
    jti         text NOT NULL CHECK (length(jti) BETWEEN 1 AND 256),
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_assertion_jtis_expiry ON oauth_assertion_jtis (expires_at);

-- PeerBridge's own access-token signing keys (RFC 9068). The private key is AES-256-GCM
-- ciphertext under the key-encryption key from the environment; `kek_id` names which one.
-- Lifecycle: active (signs) -> retired (verifies only) -> removed (neither; ciphertext erased).
CREATE TABLE signing_keys (
    kid                 text PRIMARY KEY,
    alg                 text NOT NULL CHECK (alg IN ('RS256', 'RS384', 'ES256', 'ES384')),
    public_jwk          jsonb NOT NULL,
    private_ciphertext  bytea,
    kek_id              text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    retired_at          timestamptz,
    removed_at          timestamptz,
    CHECK ((removed_at IS NULL) = (private_ciphertext IS NOT NULL)),
    CHECK (removed_at IS NULL OR retired_at IS NOT NULL)
);
-- At most one key signs at a time.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((true)) WHERE retired_at IS NULL;
