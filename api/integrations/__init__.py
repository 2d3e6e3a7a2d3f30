"""Adapters to outside standards: FHIR R4 (both ways, and its REST door)."""
