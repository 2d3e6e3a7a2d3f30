"""FHIR resource mappers: pure `to_fhir_*` / `from_fhir_*` functions, one module per resource."""
