-- A referral keeps what the clinic's ServiceRequest said, searchably: its service `code` and
-- every `category` coding as sent, its business `identifiers` (placer/filler order numbers),
-- and when its Task was created (a ServiceRequest created over FHIR has no Task until the
-- clinic POSTs one; a referral created through GraphQL has it at once). Codings are
-- [{"system", "code", "display"}]; identifiers [{"system" (null when not sent), "value"}].
ALTER TABLE referrals
    ADD COLUMN code jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(code) = 'array'),
    ADD COLUMN categories jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(categories) = 'array'),
    ADD COLUMN identifiers jsonb NOT NULL DEFAULT '[]'
        CHECK (jsonb_typeof(identifiers) = 'array'),
    ADD COLUMN task_created_at timestamptz;

-- Before this migration every referral was shown with the service code of its direction and
-- counted as having its Task.
UPDATE referrals SET
    code = CASE direction
        WHEN 'clinic_to_peer' THEN '[{"system": "http://snomed.info/sct", "code": "461481000124109", "display": "Referral to peer support"}]'::jsonb
        ELSE '[{"system": "http://snomed.info/sct", "code": "390866009", "display": "Referral to mental health team"}]'::jsonb
    END,
    task_created_at = created_at;

ALTER TABLE referrals ADD CHECK (jsonb_array_length(code) > 0);

CREATE INDEX referrals_identifiers ON referrals USING gin (identifiers jsonb_path_ops);
