-- Staff accounts for the console (issue 13): people of an organization who sign in with an
-- e-mail address and a password (argon2id hash), their console sessions, and failed sign-ins
-- (the login rate limit counts them).

CREATE TABLE staff_users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL REFERENCES organizations (id),
    email           text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    role            text NOT NULL
                    CHECK (role IN ('coordinator', 'supporter', 'supervisor', 'clinic')),
    -- A supporter's account is the peer supporter it works as (their caseload).
    supporter_id    uuid REFERENCES peer_supporters (id),
    password_hash   text NOT NULL,
    disabled_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'supporter') = (supporter_id IS NOT NULL))
);
CREATE UNIQUE INDEX staff_users_email_key ON staff_users (lower(email));
CREATE INDEX staff_users_org ON staff_users (organization_id, lower(email));

-- The cookie carries a random token; only its SHA-256 is stored.
CREATE TABLE console_sessions (
    token_hash    bytea PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sessions_user ON console_sessions (user_id);

CREATE TABLE console_login_failures (
    email_key   text NOT NULL,
    source_ip   text,
    failed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_login_failures_email ON console_login_failures (email_key, failed_at);
CREATE INDEX console_login_failures_ip ON console_login_failures (source_ip, failed_at);
