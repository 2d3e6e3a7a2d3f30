"""The `fhir` fields: each entity's FHIR R4 resource as one JSON scalar, from the FHIR mappers."""

from __future__ import annotations

from typing import Any

from strawberry.scalars import JSON

FHIR_DESCRIPTION = "This record as its FHIR R4 resource (one JSON value, mapped by the FHIR door)."


def as_json(resource: dict[str, Any]) -> JSON:
    return JSON(resource)
