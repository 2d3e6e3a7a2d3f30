-- PeerBridge core schema: tenants, programs, supporters, patients, consents, referrals,
-- sessions, outcomes, audit, outbox, idempotency. Runs on PostgreSQL 15 and 18.

CREATE TABLE organizations (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('clinic', 'peer_organization')),
    npi         text CHECK (npi ~ '^[0-9]{10}$'),
    active      boolean NOT NULL DEFAULT true,
    version     integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));

CREATE TABLE peer_programs (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id      uuid NOT NULL REFERENCES organizations (id),
    name                 text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind                 text NOT NULL CHECK (kind IN ('support_group', 'one_on_one_mentoring',
                                                       'online_community', 'structured_program')),
    description          text NOT NULL DEFAULT '',
    languages            text[] NOT NULL DEFAULT '{}',
    delivery_modes       text[] NOT NULL DEFAULT '{}'
                         CHECK (delivery_modes <@ ARRAY['in_person', 'virtual', 'phone']),
    eligibility          text NOT NULL DEFAULT '',
    capacity             integer CHECK (capacity > 0),
    accepting_referrals  boolean NOT NULL DEFAULT true,
    substance_use_focus  boolean NOT NULL DEFAULT false,
    version              integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (organization_id, name)
);
CREATE INDEX peer_programs_keyset ON peer_programs (organization_id, kind, id);
CREATE INDEX peer_programs_updated ON peer_programs (updated_at, id);

CREATE TABLE peer_supporters (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id   uuid NOT NULL REFERENCES organizations (id),
    display_name      text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
    lived_experience  text[] NOT NULL DEFAULT '{}',
    languages         text[] NOT NULL DEFAULT '{}',
    supervisor_name   text,
    supervisor_kind   text CHECK (supervisor_kind IN ('peer', 'clinical')),
    max_caseload      integer NOT NULL CHECK (max_caseload BETWEEN 0 AND 500),
    active            boolean NOT NULL DEFAULT true,
    version           integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX peer_supporters_org ON peer_supporters (organization_id, id);

CREATE TABLE certifications (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    supporter_id      uuid NOT NULL REFERENCES peer_supporters (id) ON DELETE CASCADE,
    position          smallint NOT NULL,
    type              text NOT NULL,
    subtype           text NOT NULL CHECK (subtype IN ('mental_health', 'substance_use', 'youth',
                                                       'family', 'general')),
    issuing_body      text NOT NULL,
    jurisdiction      text NOT NULL,
    number            text NOT NULL,
    status            text NOT NULL CHECK (status IN ('active', 'suspended', 'revoked')),
    issued_on         date NOT NULL,
    expires_on        date CHECK (expires_on IS NULL OR expires_on >= issued_on),
    last_verified_on  date,
    UNIQUE (supporter_id, position)
);

CREATE TABLE patients (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    managing_organization_id  uuid NOT NULL REFERENCES organizations (id),
    given_name                text NOT NULL,
    family_name               text NOT NULL,
    birth_date                date,
    gender                    text NOT NULL DEFAULT 'unknown'
                              CHECK (gender IN ('male', 'female', 'other', 'unknown')),
    phone                     text,
    email                     text,
    preferred_language        text,
    version                   integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_managing_org ON patients (managing_organization_id, id);

CREATE TABLE patient_identifiers (
    patient_id  uuid NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    system      text NOT NULL,
    value       text NOT NULL,
    PRIMARY KEY (patient_id, system),
    UNIQUE (system, value)
);

CREATE TABLE consents (
    id                           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id                   uuid NOT NULL REFERENCES patients (id),
    recorded_by_organization_id  uuid NOT NULL REFERENCES organizations (id),
    recipient_organization_id    uuid NOT NULL REFERENCES organizations (id),
    purposes                     text[] NOT NULL
                                 CHECK (cardinality(purposes) > 0
                                        AND purposes <@ ARRAY['treatment', 'care_coordination']),
    data_classes                 text[] NOT NULL
                                 CHECK (cardinality(data_classes) > 0
                                        AND data_classes <@ ARRAY['demographics', 'referral',
                                            'sessions', 'outcomes', 'substance_use']),
    period_start                 timestamptz NOT NULL,
    period_end                   timestamptz CHECK (period_end IS NULL OR period_end > period_start),
    revoked                      boolean NOT NULL DEFAULT false,
    revoked_at                   timestamptz,
    revocation_reason            text,
    source_reference             text,
    version                      integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    CHECK (revoked = (revoked_at IS NOT NULL))
);
CREATE INDEX consents_patient_recipient ON consents (patient_id, recipient_organization_id);
CREATE INDEX consents_recipient ON consents (recipient_organization_id, updated_at, id);

CREATE TABLE referrals (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    direction                   text NOT NULL CHECK (direction IN ('clinic_to_peer', 'peer_to_clinic')),
    requester_organization_id   uuid NOT NULL REFERENCES organizations (id),
    performer_organization_id   uuid NOT NULL REFERENCES organizations (id),
    program_id                  uuid REFERENCES peer_programs (id),
    patient_id                  uuid NOT NULL REFERENCES patients (id),
    priority                    text NOT NULL CHECK (priority IN ('routine', 'urgent', 'asap', 'stat')),
    reason_codes                jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(reason_codes) = 'array'),
    reason_text                 text,
    shared_data_classes         text[] NOT NULL
                                CHECK (shared_data_classes <@ ARRAY['demographics', 'referral',
                                       'sessions', 'outcomes', 'substance_use']),
    consent_id                  uuid REFERENCES consents (id),
    status                      text NOT NULL CHECK (status IN ('requested', 'accepted', 'rejected',
                                    'in-progress', 'on-hold', 'completed', 'failed', 'cancelled')),
    status_reason               text,
    assigned_supporter_id       uuid REFERENCES peer_supporters (id),
    escalated_from_id           uuid REFERENCES referrals (id),
    version                     integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CHECK (requester_organization_id <> performer_organization_id)
);
-- Inboxes and outboxes filtered by status, newest change first, keyset on (updated_at, id).
CREATE INDEX referrals_performer_inbox ON referrals (performer_organization_id, status, updated_at DESC, id DESC);
CREATE INDEX referrals_performer_updated ON referrals (performer_organization_id, updated_at DESC, id DESC);
CREATE INDEX referrals_requester_outbox ON referrals (requester_organization_id, status, updated_at DESC, id DESC);
CREATE INDEX referrals_requester_updated ON referrals (requester_organization_id, updated_at DESC, id DESC);
CREATE INDEX referrals_patient ON referrals (patient_id, updated_at DESC);
CREATE INDEX referrals_supporter_open ON referrals (assigned_supporter_id)
    WHERE status IN ('accepted', 'in-progress', 'on-hold');
CREATE INDEX referrals_program ON referrals (program_id) WHERE program_id IS NOT NULL;

CREATE TABLE referral_transitions (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referral_id       uuid NOT NULL REFERENCES referrals (id),
    version           integer NOT NULL,
    from_status       text,
    to_status         text NOT NULL,
    transition        text,
    reason            text,
    organization_id   uuid NOT NULL REFERENCES organizations (id),
    client_id         text NOT NULL,
    subject           text NOT NULL,
    at                timestamptz NOT NULL,
    UNIQUE (referral_id, version)
);

CREATE TABLE peer_sessions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    program_id       uuid NOT NULL REFERENCES peer_programs (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    format           text NOT NULL CHECK (format IN ('group', 'one_on_one')),
    delivery_mode    text NOT NULL CHECK (delivery_mode IN ('in_person', 'virtual', 'phone')),
    starts_at        timestamptz NOT NULL,
    ends_at          timestamptz NOT NULL CHECK (ends_at > starts_at),
    facilitator_ids  uuid[] NOT NULL DEFAULT '{}',
    capacity         integer CHECK (capacity > 0),
    topic            text,
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX peer_sessions_program ON peer_sessions (program_id, starts_at);

CREATE TABLE attendance (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id       uuid NOT NULL REFERENCES peer_sessions (id),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    referral_id      uuid REFERENCES referrals (id),
    status           text NOT NULL CHECK (status IN ('attended', 'no_show', 'cancelled')),
    units            integer NOT NULL CHECK (units >= 0),
    hcpcs_code       text NOT NULL,
    modifiers        text[] NOT NULL DEFAULT '{}',
    substance_use    boolean NOT NULL DEFAULT false,
    note             text,
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (session_id, patient_id)
);
CREATE INDEX attendance_patient ON attendance (patient_id, created_at);

CREATE TABLE outcome_measures (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    referral_id      uuid REFERENCES referrals (id),
    instrument       text NOT NULL CHECK (instrument IN ('phq9', 'gad7', 'swemwbs', 'ras')),
    administered_at  timestamptz NOT NULL,
    item_answers     smallint[] NOT NULL,
    total            integer NOT NULL,
    safety_signal    boolean NOT NULL DEFAULT false,
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outcome_measures_patient ON outcome_measures (patient_id, administered_at);
CREATE INDEX outcome_measures_referral ON outcome_measures (referral_id) WHERE referral_id IS NOT NULL;

-- Append-only: the application role may insert and read, never update or delete (see trigger).
CREATE TABLE audit_events (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    action           text NOT NULL CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
    outcome          text NOT NULL CHECK (outcome IN ('success', 'denied')),
    operation        text NOT NULL,
    resource_type    text NOT NULL,
    resource_id      uuid,
    patient_id       uuid,
    client_id        text NOT NULL,
    organization_id  uuid NOT NULL,
    subject          text NOT NULL,
    purpose          text,
    consent_ids      uuid[] NOT NULL DEFAULT '{}',
    detail_code      text,
    source_ip        text,
    trace_id         text
);
CREATE INDEX audit_events_patient ON audit_events (patient_id, recorded_at DESC);
CREATE INDEX audit_events_org ON audit_events (organization_id, recorded_at DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE outbox (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    event_type        text NOT NULL,
    aggregate_type    text NOT NULL,
    aggregate_id      uuid NOT NULL,
    organization_ids  uuid[] NOT NULL,
    payload           jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    published_at      timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE idempotency_keys (
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    client_id        text NOT NULL,
    key              text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
    operation        text NOT NULL,
    request_hash     text NOT NULL,
    response         jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, client_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
