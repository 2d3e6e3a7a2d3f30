-- Elements of a record's FHIR source documents that PeerBridge keeps as sent without modelling
-- them (e.g. a ServiceRequest's note or insurance, unknown extensions), by document type:
-- {"ServiceRequest": {...}, "Task": {...}}. Merged back on read; never searched.
ALTER TABLE patients ADD COLUMN verbatim jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(verbatim) = 'object');
ALTER TABLE referrals ADD COLUMN verbatim jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(verbatim) = 'object');
ALTER TABLE consents ADD COLUMN verbatim jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(verbatim) = 'object');
ALTER TABLE procedures ADD COLUMN verbatim jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(verbatim) = 'object');
ALTER TABLE outcome_measures ADD COLUMN verbatim jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(verbatim) = 'object');
ALTER TABLE consent_forms ADD COLUMN verbatim jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(verbatim) = 'object');
