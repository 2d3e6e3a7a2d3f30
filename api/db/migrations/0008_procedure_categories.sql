-- A Procedure's category is one CodeableConcept that may carry several codings (the Gravity
-- examples send a SNOMED CT code and an SDOH domain code): keep every coding for search, not
-- only one. The category as sent is kept with the record's verbatim elements (0004).
ALTER TABLE procedures ADD COLUMN categories jsonb NOT NULL DEFAULT '[]'
    CHECK (jsonb_typeof(categories) = 'array');
UPDATE procedures
   SET categories = jsonb_build_array(
           jsonb_build_object('system', category_system, 'code', category_code))
 WHERE category_code IS NOT NULL;
ALTER TABLE procedures DROP COLUMN category_system, DROP COLUMN category_code;
