"""Referrals in both directions: create, move through the Task workflow, assign, escalate, read.

See https://hl7.org/fhir/us/sdoh-clinicalcare/referral_workflow.html
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from uuid import UUID

from api.domain import text
from api.domain.audit import AuditAction, AuditRecord
from api.domain.consents import DataClass
from api.domain.errors import (
    DomainError,
    Forbidden,
    Invalid,
    InvalidDetail,
    InvalidTransition,
    NotFound,
)
from api.domain.organizations import Organization, OrganizationKind
from api.domain.patients import Patient
from api.domain.principal import Principal
from api.domain.programs import PeerProgram
from api.domain.referrals import (
    DEFAULT_SERVICE,
    OPEN_STATUSES,
    Coding,
    Direction,
    OrderIdentifier,
    Priority,
    Referral,
    ReferralStatus,
    Role,
    StatusChange,
    Transition,
    apply_transition,
    check_service_code,
)
from api.domain.supporters import check_assignable
from api.domain.text import check_texts, coding_checks, texts_problems
from api.domain.timeliness import FirstContactTimer, target_for
from api.domain.verbatim import NOTHING_KEPT, Verbatim
from api.services import idempotency, patients
from api.services.filters import ReferralFilter
from api.services.pagination import Keyset, Page, PageRequest, page_from_rows
from api.services.policy import (
    NO_CHANGE,
    Capability,
    Disclosure,
    Refusal,
    actor_of,
    allows,
    audit,
    consent_for_recipient,
    consent_scope,
    decide,
    disclosures,
    party_to,
    per_id,
    refusal,
    refuse_one,
    require,
    utcnow,
    within_caseload,
)
from api.services.repositories import (
    NO_RELATIONS,
    ReferralRead,
    ReferralRelations,
    UnitOfWork,
)

DEFAULT_SHARED = frozenset({DataClass.DEMOGRAPHICS, DataClass.REFERRAL})


@dataclass(frozen=True)
class CreateReferral:
    patient_id: UUID
    performer_organization_id: UUID
    priority: Priority = Priority.ROUTINE
    program_id: UUID | None = None
    reason_codes: tuple[Coding, ...] = ()
    reason_text: str | None = None
    shared_data_classes: frozenset[DataClass] = DEFAULT_SHARED
    # The ordered service (empty: the default of the direction; else checked against the
    # peer-support value set), the sender's categories and order identifiers.
    code: tuple[Coding, ...] = ()
    categories: tuple[Coding, ...] = ()
    identifiers: tuple[OrderIdentifier, ...] = ()
    # Consents the sender cites: each must be one that permits this referral now; the first
    # becomes the referral's consent. Empty: PeerBridge cites the one in force.
    consent_ids: tuple[UUID, ...] = ()
    # False when the sender creates the referral's Task itself afterwards (FHIR ServiceRequest
    # then Task); True when the Task comes with the referral (GraphQL).
    with_task: bool = True
    verbatim: Verbatim = field(default_factory=lambda: NOTHING_KEPT)  # kept as sent


@dataclass(frozen=True)
class EscalateReferral:
    """A peer supporter sees the need for professional care: refer the participant to a clinic."""

    referral_id: UUID
    clinic_organization_id: UUID
    priority: Priority = Priority.URGENT
    reason_codes: tuple[Coding, ...] = ()
    reason_text: str | None = None
    shared_data_classes: frozenset[DataClass] = DEFAULT_SHARED


@dataclass(frozen=True)
class ReferralView:
    """A referral as the caller may see it: PHI fields are blanked when consent does not cover
    them for the performer, who keeps the stub (ids, status, dates) so its workflow holds."""

    referral: Referral
    role: Role
    withheld: DomainError | None = None
    # Relations read with it (`ReferralRelations`): the patient only when disclosed to the
    # caller; None when not read with it.
    patient: Patient | None = None
    program: PeerProgram | None = None
    outputs: tuple[UUID, ...] | None = None  # Procedure ids, oldest first


# --- commands ---------------------------------------------------------------------------------


def _check_text(
    reason_text: str | None, data_classes: frozenset[DataClass], reason_codes: Sequence[Coding]
) -> None:
    problems = []
    for index, reason in enumerate(reason_codes):
        for name, value in (("system", reason.system), ("code", reason.code)):
            if not value or value != value.strip():
                problems.append(
                    InvalidDetail(
                        f"reasonCodes[{index}].{name}", "required, without surrounding spaces"
                    )
                )
    if reason_text is not None and not reason_text.strip():
        # Kept as sent or refused: a blank reason is not silently turned into none.
        problems.append(InvalidDetail("reasonText", "blank: leave it out instead"))
    problems += texts_problems(
        [
            ("reasonText", reason_text, text.REASON),
            *(
                check
                for index, c in enumerate(reason_codes)
                for check in coding_checks(f"reasonCodes[{index}]", c.system, c.code, c.display)
            ),
        ]
    )
    if DataClass.REFERRAL not in data_classes:
        problems.append(InvalidDetail("sharedDataClasses", "a referral always shares `referral`"))
    if problems:
        raise Invalid(problems)


def _direction(requester: Organization, performer: Organization) -> Direction:
    kinds = (requester.kind, performer.kind)
    if kinds == (OrganizationKind.CLINIC, OrganizationKind.PEER_ORGANIZATION):
        return Direction.CLINIC_TO_PEER
    if kinds == (OrganizationKind.PEER_ORGANIZATION, OrganizationKind.CLINIC):
        return Direction.PEER_TO_CLINIC
    raise Invalid(
        "referrals go from a clinic to a peer organization or from a peer organization to a clinic",
        field="performerOrganizationId",
    )


async def _audit_replay(
    uow: UnitOfWork, principal: Principal, referral: Referral, operation: str
) -> None:
    """Answering with a referral again (an idempotent replay) is audited as a read of it under
    the consents it rests on now (IDEMPOTENT_REPLAY)."""
    await _views(
        uow,
        principal,
        [referral],
        record=True,
        operation=operation,
        detail_code=idempotency.REPLAY_DETAIL,
    )


async def _once(
    uow: UnitOfWork,
    principal: Principal,
    key: str | None,
    operation: str,
    request: object,
    write: Callable[[], Awaitable[Referral]],
) -> Referral:
    """`idempotency.once` for a write that opens a referral (its replay audited)."""
    return await idempotency.once(
        uow,
        principal,
        key,
        operation,
        request,
        load=uow.referrals.get_many,
        resource_type="Referral",
        write=write,
        audit_replay=lambda again: _audit_replay(uow, principal, again, operation),
    )


async def _open_referral(
    uow: UnitOfWork,
    principal: Principal,
    command: CreateReferral,
    *,
    operation: str,
    escalated_from: Referral | None,
) -> Referral:
    """Shared by create and escalate: tenancy, program, consent, write, audit, outbox."""
    organizations = await uow.organizations.get_many(
        [principal.organization_id, command.performer_organization_id]
    )
    requester, performer = organizations
    if requester is None:
        raise Forbidden("the caller's organization is not registered")
    if performer is None:
        raise NotFound("Organization", command.performer_organization_id)
    direction = _direction(requester, performer)
    (patient,) = await uow.patients.get_many([command.patient_id])
    if patient is None:
        raise NotFound("Patient", command.patient_id)
    if command.program_id is not None:
        (program,) = await uow.programs.get_many([command.program_id])
        if program is None:
            raise NotFound("PeerProgram", command.program_id)
        if program.organization_id != performer.id:
            raise Invalid("the program belongs to another organization", field="programId")
        if not program.accepting_referrals:
            raise Invalid("the program is not accepting referrals", field="programId")
    # The referral relies on the patient's consents as read below: hold them until it commits,
    # so a concurrent revocation either waits for it or is seen here (never cited once revoked).
    await uow.consents.hold_for_patient(patient.id)
    now = utcnow()
    # The requester must itself hold or be allowed the patient's record, and the patient must
    # have consented to share exactly these classes with the performer.
    (held,) = await decide(
        uow,
        principal,
        [
            Disclosure(
                patient.id, patient.managing_organization_id, frozenset({DataClass.DEMOGRAPHICS})
            )
        ],
        now,
    )
    shared = await consent_for_recipient(
        uow, patient.id, performer.id, command.shared_data_classes, now
    )
    for decision in (held, shared):
        if not decision.permitted:
            raise await refuse_one(
                uow,
                principal,
                Refusal(
                    refusal(decision), patient.id, NotFound("Patient", patient.id), "Referral", None
                ),
                action=AuditAction.CREATE,
                operation=operation,
            )
    cited = [c for c in command.consent_ids if c not in shared.consent_ids]
    if cited:
        raise Invalid(
            [
                InvalidDetail(
                    "consentIds",
                    f"consent {c} does not permit sharing these data classes with the performer "
                    "now",
                )
                for c in cited
            ]
        )
    referral = Referral(
        id=uuid.uuid4(),
        direction=direction,
        requester_organization_id=requester.id,
        performer_organization_id=performer.id,
        program_id=command.program_id,
        patient_id=patient.id,
        priority=command.priority,
        reason_codes=command.reason_codes,
        reason_text=command.reason_text,
        shared_data_classes=command.shared_data_classes,
        consent_id=(command.consent_ids or shared.consent_ids)[0],
        status=ReferralStatus.REQUESTED,
        status_reason=None,
        assigned_supporter_id=None,
        escalated_from_id=escalated_from.id if escalated_from else None,
        version=1,
        created_at=now,
        updated_at=now,
        code=command.code or (DEFAULT_SERVICE[direction],),
        categories=command.categories,
        identifiers=command.identifiers,
        task_created_at=now if command.with_task else None,
        verbatim=command.verbatim,
    )
    first = StatusChange(None, ReferralStatus.REQUESTED, None, None, actor_of(principal), now, 1)
    created = await uow.referrals.add(referral, first)
    target = target_for(await uow.timers.targets_of(performer.id), created.priority)
    await uow.timers.start(created.id, FirstContactTimer.start(created.created_at, target))
    uow.record(
        audit(
            principal,
            action=AuditAction.CREATE,
            operation=operation,
            resource_type="Referral",
            resource_id=created.id,
            patient_id=patient.id,
            consent=shared,
        )
    )
    uow.collect(created.event("ReferralCreated"))
    return created


async def create_referral(
    uow: UnitOfWork,
    principal: Principal,
    command: CreateReferral,
    *,
    idempotency_key: str | None = None,
) -> ReferralView:
    """Send a consented referral to another organization (Gravity: ServiceRequest + Task)."""
    require(principal, Capability.CREATE_REFERRAL)
    _check_text(command.reason_text, command.shared_data_classes, command.reason_codes)
    if command.code:
        check_service_code(command.code)
    async with uow:
        referral = await _once(
            uow,
            principal,
            idempotency_key,
            "createReferral",
            command,
            lambda: _open_referral(
                uow, principal, command, operation="createReferral", escalated_from=None
            ),
        )
        await uow.commit()
    return ReferralView(referral, Role.REQUESTER)


async def escalate_referral(
    uow: UnitOfWork,
    principal: Principal,
    command: EscalateReferral,
    *,
    idempotency_key: str | None = None,
) -> ReferralView:
    """Peer → clinic referral linked to the referral the peer organization is working on."""
    require(principal, Capability.CREATE_REFERRAL)
    _check_text(command.reason_text, command.shared_data_classes, command.reason_codes)
    async with uow:
        referral = await _once(
            uow,
            principal,
            idempotency_key,
            "escalateReferral",
            command,
            lambda: _escalate(uow, principal, command),
        )
        await uow.commit()
    return ReferralView(referral, Role.REQUESTER)


async def _escalate(uow: UnitOfWork, principal: Principal, command: EscalateReferral) -> Referral:
    original = await _load(uow, command.referral_id)
    if party_to(principal, original) is not Role.PERFORMER:
        raise await _refused(
            uow,
            principal,
            original,
            Forbidden("only the organization working a referral may escalate it"),
            action=AuditAction.CREATE,
            operation="escalateReferral",
        )
    referral = await _open_referral(
        uow,
        principal,
        CreateReferral(
            patient_id=original.patient_id,
            performer_organization_id=command.clinic_organization_id,
            priority=command.priority,
            reason_codes=command.reason_codes,
            reason_text=command.reason_text,
            shared_data_classes=command.shared_data_classes,
        ),
        operation="escalateReferral",
        escalated_from=original,
    )
    if referral.direction is not Direction.PEER_TO_CLINIC:
        raise Invalid("an escalation goes to a clinic", field="clinicOrganizationId")
    uow.collect(referral.event("ReferralEscalated"))
    return referral


async def warm_handoff(
    uow: UnitOfWork,
    principal: Principal,
    referral_id: UUID,
    clinic_organization_id: UUID,
    *,
    reason_text: str | None = None,
    idempotency_key: str | None = None,
) -> ReferralView:
    """One call after a safety signal: a `stat` peer → clinic referral linked to the one the
    peer organization is working on (an escalation), announced to the clinic as it commits,
    with a one-hour first-contact target unless the clinic set another."""
    return await escalate_referral(
        uow,
        principal,
        EscalateReferral(
            referral_id=referral_id,
            clinic_organization_id=clinic_organization_id,
            priority=Priority.STAT,
            reason_text=reason_text,
        ),
        idempotency_key=idempotency_key,
    )


@dataclass(frozen=True)
class _TransitionRequest:
    referral_id: UUID
    transition: Transition
    reason: str | None
    expected_version: int | None


async def transition_referral(
    uow: UnitOfWork,
    principal: Principal,
    referral_id: UUID,
    transition: Transition,
    *,
    reason: str | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
) -> ReferralView:
    """Move a referral along the state machine as its requester or performer."""
    require(principal, Capability.TRANSITION_REFERRAL)
    check_texts([("reason", reason, text.REASON)])
    request = _TransitionRequest(referral_id, transition, reason, expected_version)
    async with uow:
        again = await idempotency.replayed(
            uow,
            principal,
            idempotency_key,
            "transitionReferral",
            request,
            uow.referrals.get_many,
            "Referral",
        )
        if again is not None:
            await _audit_replay(uow, principal, again, "transitionReferral")
            (view,) = await _views(uow, principal, [again], record=False)
            await uow.commit()
            return view
        current = await uow.referrals.get_for_update(referral_id)
        if current is None:
            raise NotFound("Referral", referral_id)
        role = party_to(principal, current)
        try:
            changed, change, event = apply_transition(
                current,
                transition,
                role=role,
                reason=reason,
                expected_version=expected_version,
                actor=actor_of(principal),
                at=utcnow(),
            )
        except Forbidden as error:
            raise await _refused(
                uow,
                principal,
                current,
                error,
                action=AuditAction.UPDATE,
                operation=f"{transition}Referral",
            ) from None
        saved = await uow.referrals.save(changed, change)
        (view,) = await _views(
            uow,
            principal,
            [saved],
            record=True,
            action=AuditAction.UPDATE,
            operation=f"{transition}Referral",
        )
        uow.collect(event)
        await idempotency.remember(
            uow, principal, idempotency_key, "transitionReferral", request, saved.id
        )
        await uow.commit()
    return view


async def assign_supporter(
    uow: UnitOfWork,
    principal: Principal,
    referral_id: UUID,
    supporter_id: UUID,
    *,
    expected_version: int | None = None,
) -> ReferralView:
    """Assign a certified peer supporter with free caseload (performer only, open referrals)."""
    require(principal, Capability.ASSIGN_SUPPORTER)
    async with uow:
        current = await uow.referrals.get_for_update(referral_id)
        if current is None:
            raise NotFound("Referral", referral_id)
        if party_to(principal, current) is not Role.PERFORMER:
            raise await _refused(
                uow,
                principal,
                current,
                Forbidden("only the performing organization assigns a peer supporter"),
                action=AuditAction.UPDATE,
                operation="assignSupporter",
            )
        current.check_version(expected_version)
        if current.status not in OPEN_STATUSES:
            raise InvalidTransition(
                f"a supporter can be assigned to an accepted, in-progress or on-hold referral, "
                f"not one that is {current.status}"
            )
        supporter = await uow.supporters.get_for_update(supporter_id)
        if supporter is None or supporter.organization_id != principal.organization_id:
            raise NotFound("PeerSupporter", supporter_id)
        if current.assigned_supporter_id != supporter.id:
            now = utcnow()
            check_assignable(
                supporter, await uow.supporters.open_caseload(supporter.id), now.date()
            )
            current = await uow.referrals.save(
                replace(
                    current,
                    assigned_supporter_id=supporter.id,
                    version=current.version + 1,
                    updated_at=now,
                ),
                None,
            )
            (view,) = await _views(
                uow,
                principal,
                [current],
                record=True,
                action=AuditAction.UPDATE,
                operation="assignSupporter",
            )
            uow.collect(current.event("SupporterAssigned"))
        else:  # nothing to change, yet the answer shows the referral: audited as a read
            (view,) = await _views(
                uow,
                principal,
                [current],
                record=True,
                operation="assignSupporter",
                detail_code=NO_CHANGE,
            )
        await uow.commit()
    return view


async def _refused(
    uow: UnitOfWork,
    principal: Principal,
    referral: Referral,
    error: DomainError,
    *,
    action: AuditAction,
    operation: str,
) -> DomainError:
    """The error to raise for a refused change of this referral, audited: NotFound to an
    organization that does not know its patient (parties always do)."""
    return await refuse_one(
        uow,
        principal,
        Refusal(error, referral.patient_id, NotFound("Referral", referral.id), "Referral",
                referral.id),
        action=action,
        operation=operation,
    )


# --- reads -----------------------------------------------------------------------------------


async def _load(uow: UnitOfWork, referral_id: UUID) -> Referral:
    (referral,) = await uow.referrals.get_many([referral_id])
    if referral is None:
        raise NotFound("Referral", referral_id)
    return referral


def _withheld_classes(referral: Referral) -> frozenset[DataClass]:
    classes = {DataClass.REFERRAL}
    if referral.is_part2:
        classes.add(DataClass.SUBSTANCE_USE)
    return frozenset(classes)


async def _views(
    uow: UnitOfWork,
    principal: Principal,
    referrals: Sequence[Referral],
    *,
    record: bool,
    action: AuditAction = AuditAction.READ,
    operation: str = "readReferral",
    detail_code: str | None = None,
) -> list[ReferralView]:
    """Decide, for each referral the caller is party to, whether its PHI is disclosed now.
    When `record`, audit each answer as `action` by `operation` (a read, or the write that
    answers with it) with the consents it rests on."""
    views, records = await _decided(
        uow,
        principal,
        [ReferralRead(referral) for referral in referrals],
        action=action,
        operation=operation,
        detail_code=detail_code,
        now=utcnow(),
        joined=False,
    )
    if record:
        uow.record(*records)
    return views


async def _decided(
    uow: UnitOfWork,
    principal: Principal,
    reads: Sequence[ReferralRead],
    *,
    action: AuditAction,
    operation: str,
    detail_code: str | None,
    now: datetime,
    joined: bool,
) -> tuple[list[ReferralView], list[AuditRecord]]:
    """`_views`, with the audit rows returned unwritten. `joined`: the reads carry the
    consents of their patients naming the caller (`consent_scope`; see `policy.decide`)."""
    decisions = await decide(
        uow,
        principal,
        [
            Disclosure(r.patient_id, r.requester_organization_id, _withheld_classes(r))
            for r in (read.referral for read in reads)
        ],
        now,
        [read.consents for read in reads] if joined else None,
    )
    views = []
    records = []
    for referral, decision in zip((read.referral for read in reads), decisions, strict=True):
        role = referral.role_of(principal.organization_id)
        assert role is not None, "callers filter by tenancy first"
        if decision.permitted:
            views.append(ReferralView(referral, role))
        else:
            views.append(ReferralView(referral.withheld(), role, refusal(decision)))
        records.append(
            audit(
                principal,
                action=action,
                operation=operation,
                resource_type="Referral",
                resource_id=referral.id,
                patient_id=referral.patient_id,
                consent=decision,
                detail_code=detail_code if decision.permitted else "REDACTED",
            )
        )
    return views, records


def _allowed(principal: Principal, relations: ReferralRelations) -> ReferralRelations:
    """The relations the caller's scopes let it read: only those join in (the others' own
    reads refuse them, as they always did)."""
    return ReferralRelations(
        patient=relations.patient and allows(principal, Capability.READ_PATIENTS),
        program=relations.program and allows(principal, Capability.READ_PROGRAMS),
        # Ids only, of a referral the caller may read (a Procedure's own read decides consent).
        outputs=relations.outputs,
    )


async def _read_views(
    uow: UnitOfWork, principal: Principal, reads: Sequence[ReferralRead], now: datetime
) -> list[ReferralView]:
    """Views of referrals read with their consents and relations in one statement, every
    answer audited in one INSERT. A joined patient comes with its referral only when its own
    disclosure (demographics) is permitted now, audited as the patient read it is; otherwise
    the patient's own read answers for it (with its refusal), as without the join."""
    views, records = await _decided(
        uow,
        principal,
        reads,
        action=AuditAction.READ,
        operation="readReferral",
        detail_code=None,
        now=now,
        joined=True,
    )
    candidates = {
        read.patient.id: (read.patient, read.consents)
        for read, view in zip(reads, views, strict=True)
        if read.patient is not None and view.withheld is None
    }
    shown, patient_reads = await disclosures(
        uow,
        principal,
        [patient for patient, _ in candidates.values()],
        resource_type="Patient",
        operation="readPatient",
        disclosure=patients.disclosure_of,
        resource_id=lambda patient: patient.id,
        now=now,
        joined=[consents for _, consents in candidates.values()],
    )
    uow.record(*records, *patient_reads)
    disclosed = {patient.id for patient in shown}
    # Built outright rather than with `dataclasses.replace`, which reads the class's fields
    # anew for every view: a page makes fifty.
    return [
        ReferralView(
            view.referral,
            view.role,
            view.withheld,
            patient=read.patient
            if view.withheld is None and view.referral.patient_id in disclosed
            else None,
            program=read.program,
            outputs=read.outputs,
        )
        for view, read in zip(views, reads, strict=True)
    ]


async def views_of(
    uow: UnitOfWork, principal: Principal, referrals: Sequence[Referral]
) -> list[ReferralView]:
    """Referrals as the caller may see them, unaudited: the caller audits (a write, or a
    comparison that discloses nothing)."""
    return await _views(uow, principal, referrals, record=False)


async def get_referrals(
    uow: UnitOfWork,
    principal: Principal,
    ids: Sequence[UUID],
    relations: ReferralRelations = NO_RELATIONS,
) -> list[ReferralView | DomainError]:
    """Referrals by id, each as the caller may see it (with the `relations` it may read), or
    why it may not (for DataLoaders)."""
    require(principal, Capability.READ_REFERRALS)
    now = utcnow()
    async with uow.autocommit():
        read = await uow.referrals.get_many_with_consents(
            ids, consent_scope(principal), _allowed(principal, relations)
        )
        found = [None if item is None else item.referral for item in read]
        mine = [item for item in read if item is not None and party_to(principal, item.referral)]
        views = {v.referral.id: v for v in await _read_views(uow, principal, mine, now)}
        results = await per_id(
            uow,
            principal,
            ids,
            found,
            views,
            resource_type="Referral",
            operation="readReferral",
            refused="this referral is between other organizations",
            patient_of=lambda r: r.patient_id,
        )
        await uow.commit()
    return results


async def get_referral(uow: UnitOfWork, principal: Principal, referral_id: UUID) -> ReferralView:
    (result,) = await get_referrals(uow, principal, [referral_id])
    if isinstance(result, DomainError):
        raise result
    return result


async def list_referrals(
    uow: UnitOfWork,
    principal: Principal,
    where: ReferralFilter,
    page: PageRequest,
    relations: ReferralRelations = NO_RELATIONS,
) -> Page[ReferralView]:
    """The caller's referrals (sent, received or both), keyset-paginated in `page.order`,
    with the `relations` the caller may read."""
    require(principal, Capability.READ_REFERRALS)
    now = utcnow()
    async with uow.autocommit():
        rows = await uow.referrals.search_with_consents(
            principal.organization_id,
            within_caseload(principal, where),
            page.after,
            page.first + 1,
            page.order,
            consent_scope(principal),
            _allowed(principal, relations),
        )
        found = page_from_rows(
            rows, page, lambda read: Keyset(read.referral.updated_at, read.referral.id)
        )
        views = await _read_views(uow, principal, found.items, now)
        await uow.commit()
    return Page(tuple(views), found.end_cursor, found.has_next_page)


async def referrals_of_patients(
    uow: UnitOfWork,
    principal: Principal,
    patient_ids: Sequence[UUID],
    where: ReferralFilter,
    page: PageRequest,
) -> list[Page[ReferralView]]:
    """`list_referrals` for many patients at once (`where.patient_id` aside): one page per
    patient, in order, with the same tenancy, consent redaction and audit."""
    require(principal, Capability.READ_REFERRALS)
    async with uow.autocommit():
        rows = await uow.referrals.search_for_patients(
            principal.organization_id,
            patient_ids,
            within_caseload(principal, replace(where, patient_id=None)),
            page.after,
            page.first + 1,
        )
        by_patient: dict[UUID, list[Referral]] = defaultdict(list)
        for referral in rows:
            by_patient[referral.patient_id].append(referral)
        pages = [
            page_from_rows(by_patient[p], page, lambda r: Keyset(r.updated_at, r.id))
            for p in patient_ids
        ]
        shown = [referral for found in pages for referral in found.items]
        views = await _views(uow, principal, shown, record=True)
        await uow.commit()
    results = []
    start = 0
    for found in pages:
        end = start + len(found.items)
        results.append(Page(tuple(views[start:end]), found.end_cursor, found.has_next_page))
        start = end
    return results


def check_may_follow(principal: Principal) -> None:
    """Refuse a live referral feed to a token that may not read referrals. What each event
    shows is decided when it is delivered, by `get_referrals` (tenancy, consent, audit)."""
    require(principal, Capability.READ_REFERRALS)


async def followed(uow: UnitOfWork, principal: Principal, referral_id: UUID) -> bool:
    """Whether a live list update may tell the caller that this referral changed: they are
    party to it now (tenancy, a supporter's caseload). Only its id is told, nothing of its
    content, so nothing is audited here; opening it is a read like any other."""
    require(principal, Capability.READ_REFERRALS)
    async with uow:
        (referral,) = await uow.referrals.get_many([referral_id])
    return referral is not None and party_to(principal, referral) is not None


async def referral_histories(
    uow: UnitOfWork, principal: Principal, referral_ids: Sequence[UUID]
) -> list[list[StatusChange] | DomainError]:
    """Transition histories (who, when, why) of referrals the caller is party to; any other
    id is NotFound (asked only under a referral the caller has already read)."""
    require(principal, Capability.READ_REFERRALS)
    async with uow:
        found = await uow.referrals.get_many(referral_ids)
        allowed = [r.id for r in found if r is not None and party_to(principal, r)]
        histories = await uow.referrals.history_for(allowed) if allowed else {}
    return [
        histories.get(referral_id, [])
        if referral_id in histories or referral_id in allowed
        else NotFound("Referral", referral_id)
        for referral_id in referral_ids
    ]
