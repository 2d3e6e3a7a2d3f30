"""FHIR REST mechanics: routes, interactions, search, Bundles, OperationOutcome, metadata."""
