-- Records the Gravity Coordination Platform role needs beyond the core schema: the Procedures a
-- referral's performer records (Task.output), and the signed consent forms Consents cite
-- (DocumentReference). Runs on PostgreSQL 15 and 18.

CREATE TABLE procedures (
    id                         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    referral_id                uuid NOT NULL REFERENCES referrals (id),
    patient_id                 uuid NOT NULL REFERENCES patients (id),
    performer_organization_id  uuid NOT NULL REFERENCES organizations (id),
    supporter_id               uuid REFERENCES peer_supporters (id),
    status                     text NOT NULL CHECK (status IN ('in-progress', 'completed', 'not-done')),
    codes                      jsonb NOT NULL CHECK (jsonb_typeof(codes) = 'array'
                                                     AND jsonb_array_length(codes) > 0),
    category_system            text,
    category_code              text,
    performed_start            timestamptz,
    performed_end              timestamptz CHECK (performed_end >= performed_start),
    units                      integer CHECK (units BETWEEN 0 AND 10000),
    part2                      boolean NOT NULL DEFAULT false,
    version                    integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    CHECK ((category_system IS NULL) = (category_code IS NULL))
);
CREATE INDEX procedures_referral ON procedures (referral_id, created_at);
CREATE INDEX procedures_patient ON procedures (patient_id, updated_at DESC);
CREATE INDEX procedures_updated ON procedures (updated_at DESC, id DESC);

-- Before this migration a completed referral's Procedure was derived, with the referral's id:
-- store those, keeping their ids (and so the URLs clients already hold), with the units and
-- span of the attendance recorded for the referral.
INSERT INTO procedures (id, referral_id, patient_id, performer_organization_id, supporter_id,
                        status, codes, performed_start, performed_end, units, part2,
                        version, created_at, updated_at)
SELECT r.id, r.id, r.patient_id, r.performer_organization_id, r.assigned_supporter_id,
       'completed',
       '[{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "H0038",
          "display": "Self-help/peer services, per 15 minutes"}]'::jsonb,
       d.first_start, d.last_end, COALESCE(d.units, 0),
       'substance_use' = ANY (r.shared_data_classes),
       1, r.updated_at, r.updated_at
FROM referrals r
LEFT JOIN LATERAL (
    SELECT sum(a.units)::integer AS units, min(s.starts_at) AS first_start,
           max(s.ends_at) AS last_end
    FROM attendance a JOIN peer_sessions s ON s.id = a.session_id
    WHERE a.referral_id = r.id AND a.units > 0
) d ON true
WHERE r.status = 'completed';

CREATE TABLE consent_forms (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id       uuid NOT NULL REFERENCES patients (id),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    content_type     text NOT NULL,
    title            text CHECK (length(title) BETWEEN 1 AND 200),
    url              text CHECK (length(url) <= 2000),
    data             bytea CHECK (octet_length(data) BETWEEN 1 AND 1048576),
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((url IS NULL) <> (data IS NULL))
);
CREATE INDEX consent_forms_patient ON consent_forms (patient_id, updated_at DESC);
