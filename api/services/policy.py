"""The one policy point: scope, tenancy, consent and the audit trail of every decision.

Both doors (GraphQL and FHIR) reach patient data only through services that call this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeVar
from uuid import UUID

from api.domain.audit import AuditAction, AuditOutcome, AuditRecord
from api.domain.consents import ConsentDecision, DataClass, decide_disclosure
from api.domain.errors import ConsentRequired, ConsentRevoked, DomainError, Forbidden, NotFound
from api.domain.principal import Principal
from api.domain.referrals import Actor
from api.domain.scopes import Scope, any_satisfies, parse_scope
from api.services.repositories import UnitOfWork

R = TypeVar("R")
V = TypeVar("V")


class Capability(StrEnum):
    READ_ORGANIZATIONS = "read organizations"
    READ_PROGRAMS = "read peer programs"
    MANAGE_PROGRAMS = "manage peer programs"
    READ_LOCATIONS = "read program locations"
    MANAGE_LOCATIONS = "manage program locations"
    READ_SUPPORTERS = "read peer supporters"
    MANAGE_SUPPORTERS = "manage peer supporters"
    READ_PATIENTS = "read patients"
    REGISTER_PATIENTS = "register patients"
    READ_CONSENTS = "read consents"
    GRANT_CONSENT = "grant consent"
    REVOKE_CONSENT = "revoke consent"
    READ_REFERRALS = "read referrals"
    CREATE_REFERRAL = "create referrals"
    TRANSITION_REFERRAL = "move a referral through its workflow"
    ASSIGN_SUPPORTER = "assign a peer supporter"
    READ_SESSIONS = "read sessions and attendance"
    RECORD_SESSIONS = "record sessions and attendance"
    READ_OUTCOMES = "read outcome measures"
    RECORD_OUTCOMES = "record outcome measures"
    READ_PROCEDURES = "read delivered procedures"
    RECORD_PROCEDURES = "record delivered procedures"
    CORRECT_PROCEDURES = "correct delivered procedures"
    READ_CONSENT_FORMS = "read signed consent forms"
    RECORD_CONSENT_FORMS = "record signed consent forms"
    READ_AUDIT = "read the audit trail"
    READ_METRICS = "read de-identified program metrics"


def _scopes(*texts: str) -> tuple[Scope, ...]:
    parsed = tuple(parse_scope(text) for text in texts)
    assert all(parsed), texts
    return tuple(scope for scope in parsed if scope is not None)


# Each capability needs one of these SMART v2 scopes (on its FHIR counterpart). Both doors use it.
CAPABILITY_SCOPES: dict[Capability, tuple[Scope, ...]] = {
    Capability.READ_ORGANIZATIONS: _scopes("user/Organization.rs"),
    Capability.READ_PROGRAMS: _scopes("user/HealthcareService.rs"),
    Capability.MANAGE_PROGRAMS: _scopes("user/HealthcareService.cu"),
    Capability.READ_LOCATIONS: _scopes("user/Location.rs"),
    Capability.MANAGE_LOCATIONS: _scopes("user/Location.cu"),
    Capability.READ_SUPPORTERS: _scopes("user/PractitionerRole.rs"),
    Capability.MANAGE_SUPPORTERS: _scopes("user/PractitionerRole.cu"),
    Capability.READ_PATIENTS: _scopes("user/Patient.rs"),
    Capability.REGISTER_PATIENTS: _scopes("user/Patient.c"),
    Capability.READ_CONSENTS: _scopes("user/Consent.rs"),
    Capability.GRANT_CONSENT: _scopes("user/Consent.c"),
    Capability.REVOKE_CONSENT: _scopes("user/Consent.u"),
    Capability.READ_REFERRALS: _scopes("user/ServiceRequest.rs", "user/Task.rs"),
    Capability.CREATE_REFERRAL: _scopes("user/ServiceRequest.c", "user/Task.c"),
    Capability.TRANSITION_REFERRAL: _scopes("user/Task.u"),
    Capability.ASSIGN_SUPPORTER: _scopes("user/Task.u"),
    Capability.READ_SESSIONS: _scopes("user/Encounter.rs"),
    Capability.RECORD_SESSIONS: _scopes("user/Encounter.c"),
    Capability.READ_OUTCOMES: _scopes("user/Observation.rs", "user/QuestionnaireResponse.rs"),
    Capability.RECORD_OUTCOMES: _scopes("user/Observation.c", "user/QuestionnaireResponse.c"),
    Capability.READ_PROCEDURES: _scopes("user/Procedure.rs"),
    Capability.RECORD_PROCEDURES: _scopes("user/Procedure.c"),
    Capability.CORRECT_PROCEDURES: _scopes("user/Procedure.u"),
    Capability.READ_CONSENT_FORMS: _scopes("user/DocumentReference.rs"),
    Capability.RECORD_CONSENT_FORMS: _scopes("user/DocumentReference.c"),
    Capability.READ_AUDIT: _scopes("user/AuditEvent.rs"),
    Capability.READ_METRICS: _scopes("user/MeasureReport.rs"),
}


def allows(principal: Principal, capability: Capability) -> bool:
    return any(any_satisfies(principal.scopes, needed) for needed in CAPABILITY_SCOPES[capability])


def require(principal: Principal, capability: Capability) -> None:
    """Refuse unless a granted scope covers the capability."""
    if not allows(principal, capability):
        needed = CAPABILITY_SCOPES[capability][0]
        raise Forbidden(
            f"the token lacks the scope to {capability} ({needed})", needed_scope=str(needed)
        )


def require_organization(principal: Principal, organization_id: UUID, what: str) -> None:
    """Tenancy: only the owning organization may change its own records."""
    if principal.organization_id != organization_id:
        raise Forbidden(f"{what} belongs to another organization")


def actor_of(principal: Principal) -> Actor:
    return Actor(principal.organization_id, principal.client_id, principal.subject)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Disclosure:
    """A request to see some classes of a patient's data recorded by `owner_organization_id`."""

    patient_id: UUID
    owner_organization_id: UUID
    data_classes: frozenset[DataClass]


async def decide(
    uow: UnitOfWork, principal: Principal, requests: Sequence[Disclosure], now: datetime
) -> list[ConsentDecision]:
    """Consent decisions for many disclosures with one query; owners always see their own data."""
    foreign = {
        r.patient_id for r in requests if r.owner_organization_id != principal.organization_id
    }
    consents = await uow.consents.for_patients(sorted(foreign)) if foreign else []
    return [
        ConsentDecision(True, (), None)
        if request.owner_organization_id == principal.organization_id
        else decide_disclosure(
            consents,
            patient_id=request.patient_id,
            recipient_organization_id=principal.organization_id,
            data_classes=request.data_classes,
            now=now,
        )
        for request in requests
    ]


async def consent_for_recipient(
    uow: UnitOfWork,
    patient_id: UUID,
    recipient_organization_id: UUID,
    data_classes: frozenset[DataClass],
    now: datetime,
) -> ConsentDecision:
    """May these classes of the patient's data go to the recipient (when creating a referral)?"""
    return decide_disclosure(
        await uow.consents.for_patients([patient_id]),
        patient_id=patient_id,
        recipient_organization_id=recipient_organization_id,
        data_classes=data_classes,
        now=now,
    )


async def disclose_each(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    found: Sequence[R | None],
    *,
    resource_type: str,
    operation: str,
    disclosure: Callable[[R], Disclosure],
) -> list[R | DomainError]:
    """Per requested id: the record when it is disclosed to the caller now, else why not (not
    found, no consent, consent revoked). Every permit and every refusal is audited."""
    present = [record for record in found if record is not None]
    requests = {id(record): disclosure(record) for record in present}
    decisions = await decide(uow, principal, list(requests.values()), utcnow())
    decision_of = dict(zip(requests, decisions, strict=True))
    results: list[R | DomainError] = []
    permits = []
    for wanted, record in zip(ids, found, strict=True):
        if record is None:
            results.append(NotFound(resource_type, wanted))
            continue
        decision = decision_of[id(record)]
        patient_id = requests[id(record)].patient_id
        if decision.permitted:
            results.append(record)
            permits.append(
                audit(
                    principal,
                    action=AuditAction.READ,
                    operation=operation,
                    resource_type=resource_type,
                    resource_id=wanted,
                    patient_id=patient_id,
                    consent_ids=decision.consent_ids,
                )
            )
        else:
            error = refusal(decision)
            results.append(error)
            denied(
                uow,
                principal,
                error,
                action=AuditAction.READ,
                operation=operation,
                resource_type=resource_type,
                resource_id=wanted,
                patient_id=patient_id,
            )
    await uow.audit.add_many(permits)
    return results


def per_id(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    found: Sequence[R | None],
    visible: dict[UUID, V],
    *,
    resource_type: str,
    operation: str,
    refused: str,
    patient_of: Callable[[R], UUID],
) -> list[V | DomainError]:
    """Per requested id: its view when the caller is party to it, NotFound, or a Forbidden that
    is audited as a denied read (tenancy decided by the caller's `visible` views)."""
    results: list[V | DomainError] = []
    for wanted, record in zip(ids, found, strict=True):
        if record is None:
            results.append(NotFound(resource_type, wanted))
        elif wanted in visible:
            results.append(visible[wanted])
        else:
            error = Forbidden(refused)
            results.append(error)
            denied(
                uow,
                principal,
                error,
                action=AuditAction.READ,
                operation=operation,
                resource_type=resource_type,
                resource_id=wanted,
                patient_id=patient_of(record),
            )
    return results


def refusal(decision: ConsentDecision) -> ConsentRequired:
    reason = decision.reason or "no consent covers this disclosure"
    return ConsentRevoked(reason) if decision.had_lapsed_consent else ConsentRequired(reason)


def audit(
    principal: Principal,
    *,
    action: AuditAction,
    operation: str,
    resource_type: str,
    resource_id: UUID | None,
    patient_id: UUID | None,
    outcome: AuditOutcome = AuditOutcome.SUCCESS,
    consent_ids: Iterable[UUID] = (),
    detail_code: str | None = None,
) -> AuditRecord:
    return AuditRecord(
        action=action,
        outcome=outcome,
        operation=operation,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        client_id=principal.client_id,
        organization_id=principal.organization_id,
        subject=principal.subject,
        purpose=principal.purpose,
        consent_ids=tuple(consent_ids),
        detail_code=detail_code,
        source_ip=principal.source_ip,
        trace_id=principal.trace_id,
    )


def denied(
    uow: UnitOfWork,
    principal: Principal,
    error: Exception,
    *,
    action: AuditAction,
    operation: str,
    resource_type: str,
    resource_id: UUID | None,
    patient_id: UUID | None,
) -> None:
    """Record a refusal so it is audited even though the use case rolls back."""
    code = getattr(error, "code", "FORBIDDEN")
    uow.record_denial(
        audit(
            principal,
            action=action,
            operation=operation,
            resource_type=resource_type,
            resource_id=resource_id,
            patient_id=patient_id,
            outcome=AuditOutcome.DENIED,
            detail_code=code,
        )
    )
