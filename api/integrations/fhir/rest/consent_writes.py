"""Consent writes: a clinic records a consent (FHIR create), and revokes it (an update to
status `inactive`, the one change a Consent takes here)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.domain.errors import DomainError, Invalid, InvalidDetail
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.consents import (
    KEEPING,
    grant_consent_command,
    to_fhir_consent,
)
from api.integrations.fhir.resources.datatypes import Json, codes_in
from api.integrations.fhir.rest.context import FhirContext
from api.services import consents


async def create_consent(ctx: FhirContext, resource: Json) -> Json:
    """Record a consent; what it states is kept as sent (see resources/consents.py)."""
    if resource.get("status") != "active":
        raise Invalid("a new consent is active", field="Consent.status")
    if "patient-privacy" not in codes_in([resource.get("scope", {})], codes.CONSENT_SCOPE):
        raise Invalid("PeerBridge records patient-privacy consents", field="Consent.scope")
    command = grant_consent_command(resource, ctx.principal)
    consent = await consents.grant_consent(ctx.new_uow(), ctx.principal, command)
    return to_fhir_consent(consent, now=ctx.now)


async def update_consent(
    ctx: FhirContext, consent_id: UUID, resource: Json, expected_version: int | None
) -> Json:
    """The one update a Consent takes here: revocation (status `inactive`); everything else it
    states stays as it is, so a PUT that changes anything else is refused naming it."""
    if resource.get("id") != str(consent_id):
        raise Invalid("must equal the id in the URL", field="Consent.id")
    if resource.get("status") != "inactive":
        raise Invalid("a consent is updated only to revoke it (inactive)", field="Consent.status")
    (current,) = await consents.get_consents(ctx.new_uow(), ctx.principal, [consent_id])
    if isinstance(current, DomainError):
        raise current
    changed = _consent_changes(to_fhir_consent(current, now=ctx.now), resource)
    if changed:
        raise Invalid(
            [
                InvalidDetail(f"Consent.{key}", "revoking a consent changes only its status")
                for key in changed
            ]
        )
    revoked = await consents.revoke_consent(
        ctx.new_uow(), ctx.principal, consent_id, expected_version=expected_version
    )
    return to_fhir_consent(revoked, now=ctx.now)


# Consent elements the server sets: never compared when a revocation is PUT.
_CONSENT_SERVER_SET = frozenset({"resourceType", "id", "meta", "status"})


def _consent_changes(current: Json, incoming: Json) -> list[str]:
    """The elements a revocation would change besides its status (the references PeerBridge
    checks compare by target; whatever is kept as sent compares exactly)."""

    def others(resource: Json) -> list[Any]:
        return [e for e in resource.get("extension", ()) if e.get("url") != codes.EXT_REVOCATION]

    changed = []
    for key in sorted((set(current) | set(incoming)) - _CONSENT_SERVER_SET):
        if key == "extension":
            same = others(current) == others(incoming)
        elif key in KEEPING.owned:
            same = _targets(current.get(key)) == _targets(incoming.get(key))
        else:
            same = current.get(key) == incoming.get(key)
        if not same:
            changed.append(key)
    return changed


def _targets(value: Any) -> Any:
    """References (alone or in a list) as what they point at: a display may differ."""
    if isinstance(value, list):
        return [_targets(v) for v in value]
    if isinstance(value, dict):
        return value.get("reference")
    return value
