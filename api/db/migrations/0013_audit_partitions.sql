-- The audit trail partitioned by month (issue 10).
--
-- audit_events becomes a table partitioned by RANGE on recorded_at: one partition per UTC month
-- (audit_events_YYYY_MM) and a DEFAULT partition, so an insert is never refused for want of a
-- partition. Queries bounded in time (accounting of disclosures, export) read only the months
-- they name; a month past the retention period is detached and exported whole instead of
-- deleted row by row (which the trail refuses anyway).
--
-- Everything 0010 built still holds: every row keeps its id, recorded_at, xid and row_hash
-- (copied as they are: the sealing trigger is created after the copy), the same v1 canonical
-- hash, TRUNCATE / UPDATE / DELETE refused (row triggers are cloned to every partition; the
-- TRUNCATE trigger is a statement trigger, so each partition gets its own), and checkpoints
-- cover the same rows.
--
-- The primary key must include the partition key: it is (id, recorded_at). Ids are still
-- random UUIDs; a lookup by id probes each partition's index.
--
-- Partitions are created ahead by audit_events_create_partitions(months_ahead), which `serve`
-- calls on a schedule and `peerbridge audit partitions create-ahead` calls on demand. It is
-- SECURITY DEFINER (it runs as the owner of the tables), so the service role, which may not
-- create tables, can still keep the months ahead in place; that is all it can do with it.

ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;

-- Same columns, order, defaults, NOT NULL and CHECK constraints as the table it replaces (the
-- v1 canonical hash reads the columns by name, the copy below by position).
CREATE TABLE audit_events (LIKE audit_events_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (recorded_at);
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events_default
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- The month partition that starts at `month_start` (a UTC month's first instant), created when
-- missing. Not created (NULL) when a table of that name already exists (a detached month) or
-- when the DEFAULT partition already holds rows of that month (PostgreSQL would refuse: the
-- rows stay where they are, readable as ever).
CREATE FUNCTION audit_events_add_partition(month_start timestamptz) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    month_end timestamptz := month_start + interval '1 month';
    name text := 'audit_events_' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM');
BEGIN
    IF month_start <> date_trunc('month', month_start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION 'a partition starts at the first instant of a UTC month, not at %', month_start;
    END IF;
    IF to_regclass(name) IS NOT NULL OR EXISTS (
        SELECT 1 FROM audit_events_default WHERE recorded_at >= month_start AND recorded_at < month_end
    ) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
                   name, month_start, month_end);
    EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON %I '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()', name);
    RETURN name;
END;
$$;
REVOKE ALL ON FUNCTION audit_events_add_partition(timestamptz) FROM PUBLIC;

-- The partitions of the current UTC month and the `months_ahead` months after it; returns the
-- ones it created. Replicas may call it together: an advisory lock serialises them. Creating a
-- partition briefly locks the trail against inserts; lock_timeout bounds that wait, and a call
-- that times out changes nothing (the next scheduled round retries).
CREATE FUNCTION audit_events_create_partitions(months_ahead integer) RETURNS SETOF text
    LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '2s' AS $$
DECLARE
    this_month timestamptz := date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    created text;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, not %', months_ahead;
    END IF;
    -- "PBAUDPRT" in hex: any constant every PeerBridge process shares.
    PERFORM pg_advisory_xact_lock(x'5042415544505254'::bigint);
    FOR step IN 0..months_ahead LOOP
        created := audit_events_add_partition(this_month + make_interval(months => step));
        IF created IS NOT NULL THEN
            RETURN NEXT created;
        END IF;
    END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION audit_events_create_partitions(integer) FROM PUBLIC;

-- Both run with the owner's rights: they see only this schema's tables, temporary ones last,
-- so no caller can slip a table of its own in front of the trail.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION audit_events_add_partition(timestamptz) SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION audit_events_create_partitions(integer) SET search_path = %I, pg_temp',
                   current_schema());
END;
$$;

-- Every month that holds rows today, then the current month and two ahead.
SELECT audit_events_add_partition(month)
FROM generate_series(
    (SELECT date_trunc('month', min(recorded_at) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
     FROM audit_events_unpartitioned),
    now(),
    interval '1 month') AS month;
SELECT audit_events_create_partitions(2);

INSERT INTO audit_events SELECT * FROM audit_events_unpartitioned;

-- audit_row_hash is declared on the table's row type; declare it again, unchanged, for the
-- partitioned table before the old one goes. Its body is taken from the catalog so the v1
-- canonical form stays written once (0010) and cannot drift.
DO $$
BEGIN
    EXECUTE replace(
        pg_get_functiondef('audit_row_hash(audit_events_unpartitioned)'::regprocedure),
        'audit_row_hash(r audit_events_unpartitioned)', 'audit_row_hash(r audit_events)');
END;
$$;
DROP FUNCTION audit_row_hash(audit_events_unpartitioned);
DROP TABLE audit_events_unpartitioned;

ALTER TABLE audit_events ADD PRIMARY KEY (id, recorded_at);
-- A patient's trail newest first (GraphQL/FHIR AuditEvent lists) and, read forwards, the
-- accounting of disclosures; id breaks ties in both orders.
CREATE INDEX audit_events_patient ON audit_events (patient_id, recorded_at, id);
CREATE INDEX audit_events_org ON audit_events (organization_id, recorded_at DESC);
CREATE INDEX audit_events_xid ON audit_events (xid);
CREATE INDEX audit_events_recorded ON audit_events (recorded_at, id);

-- As in 0010 the database sets recorded_at, xid and row_hash. A row is routed to its partition
-- by the recorded_at it arrived with (the column default, or whatever a writer put there)
-- before this trigger runs, and PostgreSQL refuses a BEFORE trigger that moves a row out of
-- the partition it was routed to. So when the database's time falls in another month than
-- the routing value (a writer's back-dated value, or an insert straddling midnight at a
-- month's end), the row is inserted again with the database's time, routed anew, and this
-- copy is skipped: it is sealed once, in the right month.
CREATE OR REPLACE FUNCTION audit_events_seal_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    routed_at timestamptz := NEW.recorded_at;
BEGIN
    NEW.recorded_at := clock_timestamp();
    IF date_trunc('month', routed_at AT TIME ZONE 'UTC')
       IS DISTINCT FROM date_trunc('month', NEW.recorded_at AT TIME ZONE 'UTC') THEN
        INSERT INTO audit_events VALUES (NEW.*);
        RETURN NULL;
    END IF;
    NEW.xid := pg_current_xact_id();
    NEW.row_hash := audit_row_hash(NEW);
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_seal BEFORE INSERT ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_seal_row();
