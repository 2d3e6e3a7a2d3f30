"""Idempotency keys, Stripe's model: the same key with the same request replays the first
result; the same key with a different request is a conflict. A key is reserved before the work
starts, so concurrent duplicates wait for the first request and replay its result (or get a
retryable IDEMPOTENCY_KEY_IN_USE if it runs too long)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, Protocol, TypeVar
from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.errors import Conflict, Invalid, NotFound
from api.domain.principal import Principal
from api.services.policy import audit
from api.services.repositories import UnitOfWork

MAX_KEY_LENGTH = 200
REPLAY_DETAIL = "IDEMPOTENT_REPLAY"
T = TypeVar("T")


class _Identified(Protocol):
    @property
    def id(self) -> UUID: ...


W = TypeVar("W", bound=_Identified)


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, frozenset | set):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID | datetime | date):
        return value.isoformat() if not isinstance(value, UUID) else str(value)
    return value


def request_hash(operation: str, request: object) -> str:
    text = json.dumps([operation, _canonical(request)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def _first_result_id(
    uow: UnitOfWork, principal: Principal, key: str | None, operation: str, request: object
) -> UUID | None:
    """The id the first request with this key produced, or None when the key is new. Either
    way the key stays reserved until this transaction ends, so a concurrent duplicate waits
    for it and replays rather than writing again."""
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise Invalid(f"must be 1 to {MAX_KEY_LENGTH} characters", field="idempotencyKey")
    await uow.idempotency.reserve(principal.organization_id, principal.client_id, key)
    found = await uow.idempotency.find(principal.organization_id, principal.client_id, key)
    if found is None:
        return None
    stored_operation, stored_hash, response = found
    if stored_operation != operation or stored_hash != request_hash(operation, request):
        raise Conflict("this idempotency key was already used with a different request")
    return UUID(response["id"])


async def replayed(
    uow: UnitOfWork,
    principal: Principal,
    key: str | None,
    operation: str,
    request: object,
    load: Callable[[Sequence[UUID]], Awaitable[Sequence[T | None]]],
    resource_type: str,
    *,
    patient_of: Callable[[T], UUID] | None = None,
) -> T | None:
    """The record the first request with this key produced, read anew; None for a new key.

    Answering again with patient data (`patient_of` names whose) discloses it again: the replay
    is audited as a read of it, marked IDEMPOTENT_REPLAY. The caller commits.
    """
    replay = await _first_result_id(uow, principal, key, operation, request)
    if replay is None:
        return None
    (found,) = await load([replay])
    if found is None:
        raise NotFound(resource_type, replay)
    if patient_of is not None:
        uow.record(
            audit(
                principal,
                action=AuditAction.READ,
                operation=operation,
                resource_type=resource_type,
                resource_id=replay,
                patient_id=patient_of(found),
                detail_code=REPLAY_DETAIL,
            )
        )
    return found


async def once(
    uow: UnitOfWork,
    principal: Principal,
    key: str | None,
    operation: str,
    request: object,
    *,
    load: Callable[[Sequence[UUID]], Awaitable[Sequence[W | None]]],
    resource_type: str,
    write: Callable[[], Awaitable[W]],
    patient_of: Callable[[W], UUID] | None = None,
    audit_replay: Callable[[W], Awaitable[None]] | None = None,
) -> W:
    """The idempotent write: the first result of this key read anew (`replayed`), or what
    `write` produces, remembered under the key. The caller commits. `audit_replay` audits
    answering with it again where `patient_of` does not say enough (a consent decision)."""
    again = await replayed(
        uow, principal, key, operation, request, load, resource_type, patient_of=patient_of
    )
    if again is not None:
        if audit_replay is not None:
            await audit_replay(again)
        return again
    written = await write()
    await remember(uow, principal, key, operation, request, written.id)
    return written


async def remember(
    uow: UnitOfWork,
    principal: Principal,
    key: str | None,
    operation: str,
    request: object,
    result_id: UUID,
) -> None:
    if key is not None:
        await uow.idempotency.add(
            principal.organization_id,
            principal.client_id,
            key,
            operation,
            request_hash(operation, request),
            {"id": str(result_id)},
        )


async def hold_condition(uow: UnitOfWork, principal: Principal, condition: str) -> None:
    """Serialise the organization's conditional creates with the same criteria (FHIR
    If-None-Exist) until this transaction ends: a concurrent one waits (a bounded time, then
    IdempotencyKeyInUse), then finds what the first created instead of creating a second."""
    await uow.idempotency.reserve(principal.organization_id, "if-none-exist", condition)
