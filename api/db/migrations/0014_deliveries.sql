-- Reliable delivery of outbox events: FHIR Subscriptions (R4 + Subscriptions R5 Backport IG
-- 1.1) and the deliveries the worker sends to their endpoints, at least once, in order per
-- referral and subscription.

CREATE TABLE subscriptions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id     uuid NOT NULL REFERENCES organizations (id),
    -- The creating client and the scopes its token held: notifications never show more.
    client_id           text NOT NULL,
    scopes              text NOT NULL,
    topic               text NOT NULL,
    -- [[name, value], ...] from the filterCriteria extension, all of which must hold.
    filters             jsonb NOT NULL DEFAULT '[]',
    endpoint            text NOT NULL,
    headers             text[] NOT NULL DEFAULT '{}',
    content             text NOT NULL CHECK (content IN ('empty', 'id-only', 'full-resource')),
    heartbeat_period_s  integer CHECK (heartbeat_period_s > 0),
    timeout_s           integer CHECK (timeout_s > 0),
    status              text NOT NULL DEFAULT 'requested'
                        CHECK (status IN ('requested', 'active', 'error', 'off')),
    -- The HMAC-SHA256 signing secret, sealed with the key-encryption key named by kek_id.
    secret_sealed       bytea NOT NULL,
    kek_id              text NOT NULL,
    -- The Subscription as the client sent it (less what PeerBridge owns), read back as sent.
    resource            jsonb NOT NULL,
    events_since_start  bigint NOT NULL DEFAULT 0,
    last_sent_at        timestamptz,
    version             integer NOT NULL DEFAULT 1,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_organization ON subscriptions (organization_id, created_at, id);
CREATE INDEX subscriptions_active ON subscriptions (topic) WHERE status = 'active';

CREATE TABLE deliveries (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stable across retries: the notification Bundle's id, receivers deduplicate on it.
    notification_id   uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    subscription_id   uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    kind              text NOT NULL CHECK (kind IN ('handshake', 'heartbeat', 'event-notification')),
    -- For event notifications: the outbox event, its number in the subscription's stream.
    event_id          uuid,
    event_type        text,
    focus_id          uuid,
    event_number      bigint,
    occurred_at       timestamptz,
    -- Deliveries with the same key go out in id order: the referral for an event, the
    -- subscription itself for its handshake and heartbeats.
    ordering_key      uuid NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    -- No PHI: an HTTP status or an error class.
    last_error        text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    CHECK ((kind = 'event-notification') = (event_id IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX deliveries_in_order ON deliveries (subscription_id, ordering_key, id)
    WHERE status = 'pending';
CREATE INDEX deliveries_dead ON deliveries (id) WHERE status = 'dead';
CREATE INDEX deliveries_delivered ON deliveries (delivered_at) WHERE status = 'delivered';
