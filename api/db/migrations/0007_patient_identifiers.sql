-- Patient identifiers as FHIR has them: a patient may hold several values of one system (an old
-- and a new MRN), and an identifier is unique within the organization that holds the record, not
-- across organizations. A network-wide uniqueness check refused a second organization's record
-- and so told it that another organization already had that person as a patient.
ALTER TABLE patient_identifiers ADD COLUMN organization_id uuid;
UPDATE patient_identifiers AS i SET organization_id = p.managing_organization_id
    FROM patients AS p WHERE p.id = i.patient_id;
ALTER TABLE patient_identifiers ALTER COLUMN organization_id SET NOT NULL;

-- Identifiers read back in the order they were sent (before: one per system, read by system).
ALTER TABLE patient_identifiers ADD COLUMN ordinal integer;
UPDATE patient_identifiers AS i SET ordinal = o.ordinal
    FROM (SELECT patient_id, system,
                 row_number() OVER (PARTITION BY patient_id ORDER BY system) - 1 AS ordinal
          FROM patient_identifiers) AS o
    WHERE o.patient_id = i.patient_id AND o.system = i.system;
ALTER TABLE patient_identifiers ALTER COLUMN ordinal SET NOT NULL;

-- The identifier's organization is its patient's managing organization, by construction.
ALTER TABLE patients ADD CONSTRAINT patients_id_managing_organization
    UNIQUE (id, managing_organization_id);
ALTER TABLE patient_identifiers ADD CONSTRAINT patient_identifiers_patient_organization
    FOREIGN KEY (patient_id, organization_id)
    REFERENCES patients (id, managing_organization_id) ON DELETE CASCADE;

ALTER TABLE patient_identifiers DROP CONSTRAINT patient_identifiers_pkey;
ALTER TABLE patient_identifiers ADD PRIMARY KEY (patient_id, system, value);
ALTER TABLE patient_identifiers DROP CONSTRAINT patient_identifiers_system_value_key;
ALTER TABLE patient_identifiers ADD CONSTRAINT patient_identifiers_unique_per_organization
    UNIQUE (organization_id, system, value);
CREATE INDEX patient_identifiers_by_value ON patient_identifiers (system, value);
