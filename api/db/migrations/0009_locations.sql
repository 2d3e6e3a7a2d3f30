-- Where peer programs meet (FHIR Location), owned by a peer organization, and the programs'
-- links to them (HealthcareService.location; Gravity Coordination Platform SHALL search).
-- physical_type, address, telecom and position hold JSON (position keeps the numbers exactly as
-- given: 0 stays 0, not 0.0); the city is searched through an expression index on address.

CREATE TABLE locations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id  uuid NOT NULL REFERENCES organizations (id),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description      text,
    status           text CHECK (status IN ('active', 'suspended', 'inactive')),
    mode             text CHECK (mode IN ('instance', 'kind')),
    physical_type    jsonb CHECK (jsonb_typeof(physical_type) = 'object'),
    address          jsonb CHECK (jsonb_typeof(address) = 'object'),
    telecom          jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(telecom) = 'array'),
    position         jsonb CHECK (jsonb_typeof(position) = 'object'),
    verbatim         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(verbatim) = 'object'),
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX locations_organization ON locations (organization_id, updated_at DESC, id DESC);
CREATE INDEX locations_updated ON locations (updated_at DESC, id DESC);
CREATE INDEX locations_city ON locations (lower(address ->> 'city'));

-- A program's locations, in the order its owner lists them. Both belong to one organization
-- (the service checks it); locations are never deleted (inactive instead), so no link dangles.
ALTER TABLE peer_programs ADD COLUMN location_ids uuid[] NOT NULL DEFAULT '{}';
CREATE INDEX peer_programs_locations ON peer_programs USING gin (location_ids);
