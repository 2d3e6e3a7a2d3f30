-- First-contact targets and timers (api/domain/timeliness.py). An organization's own targets
-- per priority (absent: the defaults); one timer per referral, started with it from its
-- performer's target, claimed by the event schedule when its next escalation is due.

CREATE TABLE first_contact_targets (
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    priority         text NOT NULL CHECK (priority IN ('routine', 'urgent', 'asap', 'stat')),
    minutes          integer CHECK (minutes > 0),
    working_days     integer CHECK (working_days > 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organization_id, priority),
    CHECK ((minutes IS NULL) <> (working_days IS NULL))
);

CREATE TABLE referral_timers (
    referral_id  uuid PRIMARY KEY REFERENCES referrals (id),
    due_at       timestamptz NOT NULL,
    escalate_at  timestamptz NOT NULL,
    level        smallint NOT NULL DEFAULT 0 CHECK (level BETWEEN 0 AND 2),
    -- When the next escalation is due; NULL after the last one (the row stays: it says when
    -- the referral became overdue).
    next_at      timestamptz
);
CREATE INDEX referral_timers_next ON referral_timers (next_at) WHERE next_at IS NOT NULL;
CREATE INDEX referral_timers_due ON referral_timers (due_at, referral_id);

-- Referrals still waiting for acceptance get their timers from the default targets. Ten working
-- days from a weekday are fourteen calendar days at the same time of day.
INSERT INTO referral_timers (referral_id, due_at, escalate_at, next_at)
SELECT id, created_at + target, created_at + 2 * target, created_at + target
FROM (
    SELECT id, created_at, CASE priority
        WHEN 'stat' THEN interval '1 hour'
        WHEN 'asap' THEN interval '4 hours'
        WHEN 'urgent' THEN interval '24 hours'
        ELSE interval '14 days' END AS target
    FROM referrals WHERE status = 'requested'
) waiting;
