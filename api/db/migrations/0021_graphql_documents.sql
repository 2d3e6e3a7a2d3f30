-- GraphQL documents known by the SHA-256 of their exact text (lowercase hex): the ones clients
-- registered through Automatic Persisted Queries (bounded: the oldest are dropped past
-- PEERBRIDGE_GRAPHQL_PERSISTED_QUERIES_MAX) and the operators' allowlist (`allowlisted`, kept
-- until removed), so every worker and replica answers the same hashes.
CREATE TABLE graphql_documents (
    sha256       text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    document     text NOT NULL CHECK (length(document) BETWEEN 1 AND 1048576),
    allowlisted  boolean NOT NULL DEFAULT false,
    name         text CHECK (length(name) BETWEEN 1 AND 200),
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Pruning drops the oldest client-registered documents first.
CREATE INDEX graphql_documents_registered_age ON graphql_documents (created_at)
    WHERE NOT allowlisted;
