"""FHIR R4 door: mappers both ways, search, REST routes, CapabilityStatement, Bundles.

Models come from `fhir.resources.R4B` only (the top-level package is R5).
"""
