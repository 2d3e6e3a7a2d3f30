"""The one policy point: scope, tenancy, consent and the audit trail of every decision.

Both doors (GraphQL and FHIR) reach patient data only through services that call this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar
from uuid import UUID

from api.domain.audit import AuditAction, AuditOutcome, AuditRecord, purpose_of_use
from api.domain.consents import (
    ConsentDecision,
    ConsentScope,
    ConsentTerms,
    DataClass,
    decide_disclosure,
)
from api.domain.errors import ConsentRequired, ConsentRevoked, DomainError, Forbidden, NotFound
from api.domain.principal import Principal
from api.domain.referrals import Actor, Referral, Role
from api.observability.metrics import count_consent_decisions

# The scope share of the policy, re-exported: services and doors ask this module.
from api.services.capabilities import CAPABILITY_SCOPES as CAPABILITY_SCOPES
from api.services.capabilities import Capability as Capability
from api.services.capabilities import allows as allows
from api.services.capabilities import require as require
from api.services.filters import ProcedureFilter, ReferralFilter
from api.services.repositories import UnitOfWork

R = TypeVar("R")
V = TypeVar("V")


def require_organization(principal: Principal, organization_id: UUID, what: str) -> None:
    """Tenancy: only the owning organization may change its own records."""
    if principal.organization_id != organization_id:
        raise Forbidden(f"{what} belongs to another organization")


def party_to(principal: Principal, referral: Referral) -> Role | None:
    """Tenancy of a referral: the caller's side of it, None when it is not theirs. A caller
    held to a caseload (a peer supporter signed in to the console) is party only to the
    referrals assigned to them."""
    caseload = principal.caseload_of
    if caseload is not None and referral.assigned_supporter_id != caseload:
        return None
    return referral.role_of(principal.organization_id)


def within_caseload(principal: Principal, where: ReferralFilter) -> ReferralFilter:
    """A referral search narrowed to the caller's caseload, when they are held to one."""
    caseload = principal.caseload_of
    if caseload is None:
        return where
    if where.assigned_supporter_id not in (None, caseload):
        return replace(where, ids=frozenset({_NO_REFERRAL}))
    return replace(where, assigned_supporter_id=caseload)


# Matches nothing: a caseload search for another supporter's referrals finds none.
_NO_REFERRAL = UUID(int=0)


def procedures_within_caseload(principal: Principal, where: ProcedureFilter) -> ProcedureFilter:
    """A delivery search narrowed to the caller's caseload's patients, when they are held to
    one (in the search's own statement: no query of its own, nothing to audit as hidden)."""
    if principal.caseload_of is None:
        return where
    return replace(where, caseload_of=principal.caseload_of)


async def beyond_caseload(
    uow: UnitOfWork, principal: Principal, patient_ids: Iterable[UUID]
) -> set[UUID]:
    """Of these patients, those a caller held to a caseload may not read: the patients of no
    referral assigned to them. None for anyone else, without a query."""
    caseload = principal.caseload_of
    if caseload is None:
        return set()
    asked = sorted(set(patient_ids))
    return set(asked) - await uow.patients.of_caseload(caseload, asked)


async def hidden_beyond_caseload(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    found: Sequence[R | None],
    *,
    patient_of: Callable[[R], UUID],
    resource_type: str,
    operation: str,
) -> list[R | None]:
    """`found`, less what a caller held to a caseload may not read: the records of patients
    of no referral assigned to them. Those read as never stored (a refusal would tell the
    supporter that their organization holds the patient), audited as denied NOT_FOUND."""
    if principal.caseload_of is None:
        return list(found)
    hidden = await beyond_caseload(
        uow, principal, (patient_of(record) for record in found if record is not None)
    )
    shown: list[R | None] = []
    for wanted, record in zip(ids, found, strict=True):
        if record is not None and patient_of(record) in hidden:
            denied(
                uow,
                principal,
                NotFound(resource_type, wanted),
                action=AuditAction.READ,
                operation=operation,
                resource_type=resource_type,
                resource_id=wanted,
                patient_id=patient_of(record),
            )
            record = None
        shown.append(record)
    return shown


async def listed_within_caseload(
    uow: UnitOfWork,
    principal: Principal,
    records: Sequence[R],
    *,
    patient_of: Callable[[R], UUID],
    resource_id: Callable[[R], UUID],
    resource_type: str,
    operation: str,
) -> list[R]:
    """Of a list, what a caller held to a caseload may read (see `hidden_beyond_caseload`): the
    records of other patients are left out as never stored, each audited as denied NOT_FOUND."""
    ids = [resource_id(record) for record in records]
    shown = await hidden_beyond_caseload(
        uow,
        principal,
        ids,
        records,
        patient_of=patient_of,
        resource_type=resource_type,
        operation=operation,
    )
    return [record for record in shown if record is not None]


async def patients_beyond_caseload(
    uow: UnitOfWork,
    principal: Principal,
    patient_ids: Sequence[UUID],
    *,
    action: AuditAction = AuditAction.READ,
    resource_type: str,
    operation: str,
) -> set[UUID]:
    """Of the patients a read or write names, those a caller held to a caseload may not reach:
    the caller answers each as the unknown patient (`NotFound("Patient", id)`, as for an id
    never stored); each is audited here as denied NOT_FOUND."""
    hidden = await beyond_caseload(uow, principal, patient_ids)
    for patient_id in sorted(hidden):
        denied(
            uow,
            principal,
            NotFound("Patient", patient_id),
            action=action,
            operation=operation,
            resource_type=resource_type,
            resource_id=None,
            patient_id=patient_id,
        )
    return hidden


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


def consent_scope(principal: Principal) -> ConsentScope:
    """The consents a read joins in with its rows so `decide` needs no query of its own: every
    consent of the row's patient naming the caller (the rule decides which permit, and why
    the others do not)."""
    return ConsentScope(principal.organization_id)


async def decide(
    uow: UnitOfWork,
    principal: Principal,
    requests: Sequence[Disclosure],
    now: datetime,
    joined: Sequence[Sequence[ConsentTerms]] | None = None,
) -> list[ConsentDecision]:
    """Consent decisions for many disclosures, by `decide_disclosure`; owners always see their
    own data.

    `joined`, per request, is what the read joined in under `consent_scope(principal)`: the
    patient's consents naming the caller, all the rule reads, so no query is needed. Without
    it, the patients' consents are read in one query."""
    mine = principal.organization_id
    if joined is None:
        undecided = sorted({r.patient_id for r in requests if r.owner_organization_id != mine})
        read = await uow.consents.for_patients(undecided) if undecided else []
        joined = [read] * len(requests)
    # A page holds several records of one patient: each question is decided once.
    answers: dict[Disclosure, ConsentDecision] = {}
    decided = []
    for request, consents in zip(requests, joined, strict=True):
        decision = answers.get(request)
        if decision is None:
            decision = answers[request] = (
                ConsentDecision(True, (), None)
                if request.owner_organization_id == mine
                else decide_disclosure(
                    consents,
                    patient_id=request.patient_id,
                    recipient_organization_id=mine,
                    data_classes=request.data_classes,
                    now=now,
                )
            )
        decided.append(decision)
    permitted = sum(1 for decision in decided if decision.permitted)
    count_consent_decisions(permitted, len(decided) - permitted)
    return decided


async def consent_for_recipient(
    uow: UnitOfWork,
    patient_id: UUID,
    recipient_organization_id: UUID,
    data_classes: frozenset[DataClass],
    now: datetime,
) -> ConsentDecision:
    """May these classes of the patient's data go to the recipient (when creating a referral)?"""
    decision = decide_disclosure(
        await uow.consents.for_patients([patient_id]),
        patient_id=patient_id,
        recipient_organization_id=recipient_organization_id,
        data_classes=data_classes,
        now=now,
    )
    count_consent_decisions(int(decision.permitted), int(not decision.permitted))
    return decision


@dataclass(frozen=True)
class Refusal:
    """A read or write the caller may not make, about one record of a patient.

    `absent` is what the caller would be told had the record never existed; `resource_type`
    and `resource_id` are what the audit row names.
    """

    error: DomainError
    patient_id: UUID | None
    absent: DomainError
    resource_type: str
    resource_id: UUID | None


async def known_patients(
    uow: UnitOfWork, organization_id: UUID, patient_ids: Iterable[UUID]
) -> set[UUID]:
    """The patients the organization already knows of: it holds their record, requests or
    performs one of their referrals, or recorded or receives one of their consents."""
    wanted = sorted(set(patient_ids))
    if not wanted:
        return set()
    known = {
        p.id
        for p in await uow.patients.get_many(wanted)
        if p is not None and p.managing_organization_id == organization_id
    }
    rest = [p for p in wanted if p not in known]
    if rest:
        parties = await uow.patients.referral_organizations(rest)
        known |= {p for p in rest if organization_id in parties.get(p, ())}
        rest = [p for p in rest if p not in known]
    if rest:
        known |= {
            c.patient_id
            for c in await uow.consents.for_patients(rest)
            if organization_id in (c.recorded_by_organization_id, c.recipient_organization_id)
        }
    return known


async def refuse(
    uow: UnitOfWork,
    principal: Principal,
    refusals: Sequence[Refusal],
    *,
    action: AuditAction,
    operation: str,
) -> list[DomainError]:
    """What the caller is told of each refusal, each audited as denied.

    No existence oracle: to an organization with no relationship to the patient (see
    `known_patients`), a record it may not see is a record that does not exist, so it gets
    exactly the NotFound an unknown id gets. An organization that knows the patient gets the
    reason (FORBIDDEN, CONSENT_REQUIRED, CONSENT_REVOKED): it learns nothing new from it.
    The audit row keeps the attempt with the code the caller was told, so the holder's
    accounting shows probes by unrelated organizations as denied NOT_FOUND reads.
    """
    known = await known_patients(
        uow, principal.organization_id, (r.patient_id for r in refusals if r.patient_id)
    )
    told: list[DomainError] = []
    for refused in refusals:
        error = refused.error if refused.patient_id in known else refused.absent
        told.append(error)
        denied(
            uow,
            principal,
            error,
            action=action,
            operation=operation,
            resource_type=refused.resource_type,
            resource_id=refused.resource_id,
            patient_id=refused.patient_id,
        )
    return told


async def refuse_one(
    uow: UnitOfWork, principal: Principal, refused: Refusal, *, action: AuditAction, operation: str
) -> DomainError:
    """`refuse` for a single refusal: the error to raise."""
    (error,) = await refuse(uow, principal, [refused], action=action, operation=operation)
    return error


async def answer_each(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    found: Sequence[R | None],
    shown: Mapping[UUID, V],
    refused: Mapping[UUID, tuple[DomainError, UUID | None]],
    *,
    resource_type: str,
    operation: str,
) -> list[V | DomainError]:
    """Per requested id: `shown[id]`; or what `refuse` tells of `refused[id]` (the refusal,
    and the patient the record is about), audited as a denied read; or NotFound."""
    refusals = [
        Refusal(error, patient_id, NotFound(resource_type, wanted), resource_type, wanted)
        for wanted, (error, patient_id) in refused.items()
    ]
    told = await refuse(uow, principal, refusals, action=AuditAction.READ, operation=operation)
    told_of = dict(zip(refused, told, strict=True))
    return [
        NotFound(resource_type, wanted)
        if record is None
        else shown[wanted]
        if wanted in shown
        else told_of[wanted]
        for wanted, record in zip(ids, found, strict=True)
    ]


async def disclose_each(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    found: Sequence[R | None],
    *,
    resource_type: str,
    operation: str,
    disclosure: Callable[[R], Disclosure],
    now: datetime | None = None,
    joined: Sequence[Sequence[ConsentTerms]] | None = None,
) -> list[R | DomainError]:
    """Per requested id: the record when it is disclosed to the caller now, else why not (not
    found, no consent, consent revoked; see `refuse`). Every permit and refusal is audited.
    `joined` (per id, read with the records under `consent_scope(principal)`) spares the
    consent query (see `decide`)."""
    present = {w: record for w, record in zip(ids, found, strict=True) if record is not None}
    asked = {wanted: disclosure(record) for wanted, record in present.items()}
    per_request = None
    if joined is not None:
        by_id = dict(zip(ids, joined, strict=True))
        per_request = [by_id[wanted] for wanted in asked]
    decisions = await decide(uow, principal, list(asked.values()), now or utcnow(), per_request)
    shown: dict[UUID, R] = {}
    refused: dict[UUID, tuple[DomainError, UUID | None]] = {}
    permits = []
    for (wanted, request), decision in zip(asked.items(), decisions, strict=True):
        if not decision.permitted:
            refused[wanted] = (refusal(decision), request.patient_id)
            continue
        shown[wanted] = present[wanted]
        permits.append(
            audit(
                principal,
                action=AuditAction.READ,
                operation=operation,
                resource_type=resource_type,
                resource_id=wanted,
                patient_id=request.patient_id,
                consent=decision,
            )
        )
    uow.record(*permits)
    return await answer_each(
        uow, principal, ids, found, shown, refused, resource_type=resource_type, operation=operation
    )


async def disclosed(
    uow: UnitOfWork,
    principal: Principal,
    records: Sequence[R],
    *,
    resource_type: str,
    operation: str,
    disclosure: Callable[[R], Disclosure],
    resource_id: Callable[[R], UUID],
) -> list[R]:
    """Of a list, the records disclosed to the caller now (no refusal: a list shows what it may).
    Each one shown is audited with the consents it rested on and their purpose."""
    shown, records_of_reads = await disclosures(
        uow,
        principal,
        records,
        resource_type=resource_type,
        operation=operation,
        disclosure=disclosure,
        resource_id=resource_id,
    )
    uow.record(*records_of_reads)
    return shown


async def disclosures(
    uow: UnitOfWork,
    principal: Principal,
    records: Sequence[R],
    *,
    resource_type: str,
    operation: str,
    disclosure: Callable[[R], Disclosure],
    resource_id: Callable[[R], UUID],
    now: datetime | None = None,
    joined: Sequence[Sequence[ConsentTerms]] | None = None,
) -> tuple[list[R], list[AuditRecord]]:
    """`disclosed`, the audit rows returned for the caller to write with its others (one
    INSERT per request); `joined` as for `decide`."""
    requests = [disclosure(record) for record in records]
    decisions = await decide(uow, principal, requests, now or utcnow(), joined)
    shown = [(r, q, d) for r, q, d in zip(records, requests, decisions, strict=True) if d.permitted]
    return [record for record, _, _ in shown], [
        audit(
            principal,
            action=AuditAction.READ,
            operation=operation,
            resource_type=resource_type,
            resource_id=resource_id(record),
            patient_id=request.patient_id,
            consent=decision,
        )
        for record, request, decision in shown
    ]


async def per_id(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    found: Sequence[R | None],
    visible: dict[UUID, V],
    *,
    resource_type: str,
    operation: str,
    refused: str,
    patient_of: Callable[[R], UUID | None],
) -> list[V | DomainError]:
    """Per requested id: its view when the caller is party to it (tenancy decided by the
    caller's `visible` views), NotFound, or what `refuse` tells of a Forbidden."""
    refusals = {
        wanted: (Forbidden(refused), patient_of(record))
        for wanted, record in zip(ids, found, strict=True)
        if record is not None and wanted not in visible
    }
    return await answer_each(
        uow, principal, ids, found, visible, refusals, resource_type=resource_type,
        operation=operation,
    )


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
    consent: ConsentDecision | None = None,
    detail_code: str | None = None,
) -> AuditRecord:
    """The one shape of an audit row. `consent` is the decision the access rested on: its
    consents are named and its purposes become the purpose of use (see
    `api.domain.audit.purpose_of_use`); without one the caller acted on its own records."""
    purpose = None
    if outcome is AuditOutcome.SUCCESS:
        purpose = principal.purpose or purpose_of_use(consent.purposes if consent else None)
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
        purpose=purpose,
        consent_ids=consent.consent_ids if consent else (),
        detail_code=detail_code,
        source_ip=principal.source_ip,
        trace_id=principal.trace_id,
    )


# Audit detail of a write that found nothing to change but answered with the record.
NO_CHANGE = "NO_CHANGE"


def unchanged(
    principal: Principal,
    *,
    operation: str,
    resource_type: str,
    resource_id: UUID,
    patient_id: UUID,
    detail_code: str = NO_CHANGE,
) -> AuditRecord:
    """A write that changed nothing still answers with the record: audited as the read it is
    (a write's own row would claim a change that did not happen)."""
    return audit(
        principal,
        action=AuditAction.READ,
        operation=operation,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=patient_id,
        detail_code=detail_code,
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
