-- Tamper evidence for the audit trail (issue 9).
--
-- 1. TRUNCATE is refused like UPDATE and DELETE (row triggers never fire for TRUNCATE).
-- 2. Every row carries the id of the transaction that wrote it (`xid`) and a SHA-256 over a
--    canonical serialisation of all its columns (`row_hash`), both set by the database at insert.
-- 3. `audit_checkpoints`: signed batches. Checkpoint n covers exactly the rows whose `xid` lies in
--    [xid_from, xid_to), where xid_to was the oldest transaction still running when it was taken:
--    every transaction below it had finished, so no row can join that range later, and a row of
--    a transaction still in flight simply falls into the next checkpoint. No lock is taken per
--    insert; checkpoints are taken afterwards (`peerbridge audit checkpoint`, and `serve`).
-- The canonical serialisation is re-implemented in Python by `peerbridge audit verify`
-- (api/domain/audit_evidence.py), which trusts nothing computed by the database.

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Existing rows get this migration's transaction id: they all belong to the first checkpoint.
ALTER TABLE audit_events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
ALTER TABLE audit_events ADD COLUMN row_hash bytea;

-- v1 canonical form: the literal "peerbridge-audit-row-v1", then each column in this order as
-- "<octet length>:<text>" (or "~" for NULL): id, recorded_at (microseconds since the Unix epoch),
-- xid, action, outcome, operation, resource_type, resource_id, patient_id, client_id,
-- organization_id, subject, purpose, consent_ids (comma-joined), detail_code, source_ip,
-- trace_id. uuids in lower-case hyphenated text. A column added later needs a v2.
CREATE FUNCTION audit_row_hash(r audit_events) RETURNS bytea LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- One expression (PL/pgSQL keeps its plan per session): UTF-8 of the concatenation is the
    -- concatenation of the UTF-8 of its parts, so each part's length is taken in UTF-8 bytes.
    RETURN sha256(convert_to('peerbridge-audit-row-v1'
        || coalesce(octet_length(convert_to(r.id::text, 'UTF8')) || ':' || r.id::text, '~')
        || coalesce(octet_length(convert_to(((extract(epoch FROM r.recorded_at) * 1000000)::bigint)::text, 'UTF8')) || ':' || ((extract(epoch FROM r.recorded_at) * 1000000)::bigint)::text, '~')
        || coalesce(octet_length(convert_to(r.xid::text, 'UTF8')) || ':' || r.xid::text, '~')
        || coalesce(octet_length(convert_to(r.action, 'UTF8')) || ':' || r.action, '~')
        || coalesce(octet_length(convert_to(r.outcome, 'UTF8')) || ':' || r.outcome, '~')
        || coalesce(octet_length(convert_to(r.operation, 'UTF8')) || ':' || r.operation, '~')
        || coalesce(octet_length(convert_to(r.resource_type, 'UTF8')) || ':' || r.resource_type, '~')
        || coalesce(octet_length(convert_to(r.resource_id::text, 'UTF8')) || ':' || r.resource_id::text, '~')
        || coalesce(octet_length(convert_to(r.patient_id::text, 'UTF8')) || ':' || r.patient_id::text, '~')
        || coalesce(octet_length(convert_to(r.client_id, 'UTF8')) || ':' || r.client_id, '~')
        || coalesce(octet_length(convert_to(r.organization_id::text, 'UTF8')) || ':' || r.organization_id::text, '~')
        || coalesce(octet_length(convert_to(r.subject, 'UTF8')) || ':' || r.subject, '~')
        || coalesce(octet_length(convert_to(r.purpose, 'UTF8')) || ':' || r.purpose, '~')
        || coalesce(octet_length(convert_to(array_to_string(r.consent_ids, ','), 'UTF8')) || ':' || array_to_string(r.consent_ids, ','), '~')
        || coalesce(octet_length(convert_to(r.detail_code, 'UTF8')) || ':' || r.detail_code, '~')
        || coalesce(octet_length(convert_to(r.source_ip, 'UTF8')) || ':' || r.source_ip, '~')
        || coalesce(octet_length(convert_to(r.trace_id, 'UTF8')) || ':' || r.trace_id, '~'),
        'UTF8'));
END;
$$;

-- The database, not the writer, decides when a row was recorded, by which transaction, and
-- what its hash is: a writer cannot back-date a row or place it in an already sealed range.
CREATE FUNCTION audit_events_seal_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.recorded_at := clock_timestamp();
    NEW.xid := pg_current_xact_id();
    NEW.row_hash := audit_row_hash(NEW);
    RETURN NEW;
END;
$$;

ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update;
UPDATE audit_events SET row_hash = audit_row_hash(audit_events);
ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_update;
ALTER TABLE audit_events ALTER COLUMN row_hash SET NOT NULL;

CREATE TRIGGER audit_events_seal BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_seal_row();
CREATE INDEX audit_events_xid ON audit_events (xid);
-- `peerbridge audit export --since`: the whole trail in recorded order.
CREATE INDEX audit_events_recorded ON audit_events (recorded_at, id);

-- Signed batches of row hashes. `signature` is a compact JWS (signed with PeerBridge's signing
-- key, sealed at rest with the key-encryption key) whose payload repeats seq, the xid range,
-- row_count, root and previous: the JWS is the evidence, the other columns are for queries.
-- `manifest` lists (id, row_hash) of the covered rows in id order, so verification can name
-- the rows that changed; `root` is the RFC 6962 Merkle tree hash over those row hashes.
-- `key_attestation` seals the signing key's id with the key-encryption key: a database
-- superuser can add a key of their own to signing_keys, but cannot attest it.
CREATE TABLE audit_checkpoints (
    seq              bigint PRIMARY KEY CHECK (seq > 0),
    xid_from         xid8 NOT NULL,
    xid_to           xid8 NOT NULL,
    row_count        integer NOT NULL CHECK (row_count > 0),
    root             bytea NOT NULL,
    previous         bytea,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    kid              text NOT NULL,
    signature        text NOT NULL,
    key_attestation  bytea NOT NULL,
    manifest         bytea NOT NULL,
    CHECK (xid_from < xid_to)
);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
