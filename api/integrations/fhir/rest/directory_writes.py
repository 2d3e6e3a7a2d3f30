"""Create and update the directory's Locations (where peer programs meet) through the services."""

from __future__ import annotations

from uuid import UUID

from api.domain.errors import Invalid
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.resources.locations import to_fhir_location, upsert_location_command
from api.integrations.fhir.rest.context import FhirContext
from api.services import locations


async def create_location(ctx: FhirContext, resource: Json) -> Json:
    command = upsert_location_command(resource, ctx.principal.organization_id)
    location = await locations.upsert_location(
        ctx.new_uow(), ctx.principal, command, idempotency_key=ctx.idempotency_key
    )
    return to_fhir_location(location)


async def update_location(
    ctx: FhirContext, location_id: UUID, resource: Json, expected_version: int | None
) -> Json:
    """The owning peer organization replaces a location (what it sends is what is kept)."""
    if resource.get("id") != str(location_id):
        raise Invalid("must equal the id in the URL", field="Location.id")
    command = upsert_location_command(
        resource,
        ctx.principal.organization_id,
        location_id=location_id,
        expected_version=expected_version,
    )
    return to_fhir_location(await locations.upsert_location(ctx.new_uow(), ctx.principal, command))
