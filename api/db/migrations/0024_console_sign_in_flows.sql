-- Single sign-on to the console (issue 13): an OpenID Connect sign-in in flight between the
-- redirect to the organization's provider and its callback. The row holds what the callback
-- needs (nonce, PKCE verifier, redirect URI); any replica may receive the callback. Read once,
-- kept ten minutes at most.

CREATE TABLE console_sign_in_flows (
    flow_key    text PRIMARY KEY CHECK (length(flow_key) <= 200),
    data        text NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sign_in_flows_expiry ON console_sign_in_flows (expires_at);
