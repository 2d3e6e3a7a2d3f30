-- PeerBridge's two database roles (production). Run once, as a superuser or a role with
-- CREATEROLE and CREATEDB, on the PostgreSQL server:
--
--   psql "postgresql://postgres@db-host/postgres" -v ON_ERROR_STOP=1 \
--        -v owner_password="$OWNER_PASSWORD" -v app_password="$APP_PASSWORD" \
--        -f deploy/roles.sql
--
-- peerbridge_owner owns the database and every table: migrations run as it
--   PEERBRIDGE_MIGRATION_DATABASE_URL=postgresql://peerbridge_owner:...@db-host/peerbridge
-- peerbridge_app is what `serve` logs in as; it owns nothing, so it cannot ALTER a table (nor
-- disable the audit trail's triggers), and `peerbridge db grant-service-role` (or `migrate`
-- with PEERBRIDGE_SERVICE_ROLE=peerbridge_app) grants it exactly what it needs: read/write on
-- the working tables, INSERT and SELECT only on audit_events and audit_checkpoints.
--   DATABASE_URL=postgresql://peerbridge_app:...@db-host/peerbridge
--
-- Then, as the operator:
--   PEERBRIDGE_MIGRATION_DATABASE_URL=... PEERBRIDGE_SERVICE_ROLE=peerbridge_app peerbridge migrate
--   DATABASE_URL=... peerbridge serve          # finds nothing pending: needs no owner rights

CREATE ROLE peerbridge_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE peerbridge_app LOGIN PASSWORD :'app_password';
CREATE DATABASE peerbridge OWNER peerbridge_owner;

\connect peerbridge
-- PostgreSQL 15+ already keeps CREATE on schema public from PUBLIC; 14 and older do not.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT CREATE, USAGE ON SCHEMA public TO peerbridge_owner;
