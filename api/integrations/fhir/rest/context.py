"""What every FHIR interaction needs: the caller, a unit of work per use case, the base URL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.auth.kek import KeyEncryptionKey
from api.domain.principal import Principal
from api.services.repositories import UnitOfWork
from api.services.subscriptions import EndpointPolicy


@dataclass(frozen=True)
class FhirContext:
    principal: Principal
    new_uow: Callable[[], UnitOfWork]
    base_url: str  # .../fhir, no trailing slash
    # The request's `Idempotency-Key` header: creates that support one replay the first result.
    # Bundle entries never inherit it (one key, one create).
    idempotency_key: str | None = None
    # PEERBRIDGE_FHIR_MAX_BUNDLE_ENTRIES and PEERBRIDGE_FHIR_MAX_INCLUDED (the routes pass them).
    max_bundle_entries: int = 50
    max_included: int = 100
    # Subscriptions: the key sealing their signing secrets, and where endpoints may point.
    secrets_key: KeyEncryptionKey | None = None
    endpoint_policy: EndpointPolicy = field(default_factory=EndpointPolicy)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def full_url(self, resource_type: str, resource_id: str) -> str:
        return f"{self.base_url}/{resource_type}/{resource_id}"
