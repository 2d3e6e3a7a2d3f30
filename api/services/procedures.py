"""What a referral's performer delivered (Gravity: a light recipient records Procedures on the
coordination platform; the Task's output references them).

Parties to the referral read them; the patient data in them follows the referral's consent
rule (the same data classes), so a revoked consent leaves the performer a redacted stub.
See https://hl7.org/fhir/us/sdoh-clinicalcare/referral_workflow.html
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.consents import DataClass
from api.domain.errors import DomainError, Forbidden, Invalid, NotFound, VersionConflict
from api.domain.principal import Principal
from api.domain.procedures import (
    RECORDABLE_STATUSES,
    Procedure,
    ProcedureStatus,
    check_delivery,
    delivered,
)
from api.domain.referrals import Coding, Referral, Role
from api.domain.text import check_texts, coding_checks
from api.domain.verbatim import NOTHING_KEPT, Verbatim, nothing_kept
from api.services import idempotency
from api.services.filters import ProcedureFilter
from api.services.pagination import Keyset, Page, PageRequest, page_from_rows
from api.services.policy import (
    Capability,
    Disclosure,
    Refusal,
    audit,
    decide,
    hidden_beyond_caseload,
    per_id,
    procedures_within_caseload,
    refusal,
    refuse_one,
    require,
    utcnow,
)
from api.services.repositories import UnitOfWork

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class RecordProcedure:
    """Units and period left out are taken from the attendance recorded for the referral.

    `duration_stated`: false for a moment or a period given only to the day, whose start and end
    bound no duration the billed units could be held against."""

    referral_id: UUID
    status: ProcedureStatus
    codes: tuple[Coding, ...]
    patient_id: UUID | None = None  # when given, the referral's patient
    performer_organization_id: UUID | None = None  # when given, the caller's organization
    categories: tuple[Coding, ...] = ()
    supporter_id: UUID | None = None
    performed_start: datetime | None = None
    performed_end: datetime | None = None
    units: int | None = None
    duration_stated: bool = True
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent


@dataclass(frozen=True)
class ProcedureView:
    """A Procedure as the caller may see it: without its PHI when consent does not cover it."""

    procedure: Procedure
    withheld: DomainError | None = None


def _check(command: RecordProcedure, now: datetime) -> None:
    codings = [(f"codes[{i}]", c) for i, c in enumerate(command.codes)]
    codings += [(f"categories[{i}]", c) for i, c in enumerate(command.categories)]
    check_texts(
        check
        for field, c in codings
        for check in coding_checks(field, c.system, c.code, c.display)
    )
    check_delivery(
        status=command.status,
        codes=command.codes,
        performed_start=command.performed_start,
        performed_end=command.performed_end,
        units=command.units,
        duration_stated=command.duration_stated,
    )
    for name, stamp in (
        ("performedStart", command.performed_start),
        ("performedEnd", command.performed_end),
    ):
        if stamp is not None and stamp > now + CLOCK_SKEW:
            raise Invalid("a delivery is recorded once it happened", field=name)


async def _party_referral(
    uow: UnitOfWork, principal: Principal, command: RecordProcedure
) -> Referral:
    """The referral, if the caller performs it and it is being worked or done."""
    (referral,) = await uow.referrals.get_many([command.referral_id])
    if referral is None:
        raise Invalid("not a referral on this server", field="referralId")
    if referral.role_of(principal.organization_id) is not Role.PERFORMER:
        raise await refuse_one(
            uow,
            principal,
            Refusal(
                Forbidden("only the referral's performer records what it delivered"),
                referral.patient_id,
                Invalid("not a referral on this server", field="referralId"),
                "Procedure",
                None,
            ),
            action=AuditAction.CREATE,
            operation="recordProcedure",
        )
    if referral.status not in RECORDABLE_STATUSES:
        raise Invalid(
            f"deliveries are recorded for in-progress or completed referrals, "
            f"not one that is {referral.status}",
            field="referralId",
        )
    if command.performer_organization_id not in (None, principal.organization_id):
        raise Invalid("a delivery is recorded by its performer", field="performerOrganizationId")
    if command.patient_id is not None and command.patient_id != referral.patient_id:
        raise Invalid("is not the referral's patient", field="patientId")
    if command.supporter_id is not None:
        (supporter,) = await uow.supporters.get_many([command.supporter_id])
        if supporter is None or supporter.organization_id != principal.organization_id:
            raise Invalid("not a peer supporter of your organization", field="supporterId")
    return referral


async def _with_defaults(
    uow: UnitOfWork, principal: Principal, referral: Referral, command: RecordProcedure
) -> RecordProcedure:
    """Fill units and period from the performer's own attendance records of the referral."""
    not_done = command.status is ProcedureStatus.NOT_DONE
    if command.units is not None and (command.performed_start is not None or not_done):
        return command
    rows = await uow.sessions.attendance_for(patient_ids=[referral.patient_id])
    mine = [a for a in rows if a.organization_id == principal.organization_id]
    sessions = await uow.sessions.get_many(sorted({a.session_id for a in mine}))
    found = delivered(referral.id, mine, [s for s in sessions if s is not None])
    units = command.units if command.units is not None else (0 if not_done else found.units)
    if command.performed_start is not None or not_done or found.start is None:
        return replace(command, units=units)
    return replace(command, units=units, performed_start=found.start, performed_end=found.end)


async def record_procedure(
    uow: UnitOfWork,
    principal: Principal,
    command: RecordProcedure,
    *,
    idempotency_key: str | None = None,
) -> ProcedureView:
    """Record a delivery against a referral the caller performs (in progress or completed)."""
    require(principal, Capability.RECORD_PROCEDURES)
    now = utcnow()
    _check(command, now)
    async with uow:
        procedure = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "recordProcedure",
            command,
            load=uow.procedures.get_many,
            resource_type="Procedure",
            write=lambda: _record(uow, principal, command, now),
            patient_of=lambda procedure: procedure.patient_id,
        )
        await uow.commit()
    return ProcedureView(procedure)


async def _record(
    uow: UnitOfWork, principal: Principal, command: RecordProcedure, now: datetime
) -> Procedure:
    referral = await _party_referral(uow, principal, command)
    filled = await _with_defaults(uow, principal, referral, command)
    _check(filled, now)
    procedure = await uow.procedures.add(
        Procedure(
            id=uuid.uuid4(),
            referral_id=referral.id,
            patient_id=referral.patient_id,
            performer_organization_id=principal.organization_id,
            supporter_id=filled.supporter_id,
            status=filled.status,
            codes=filled.codes,
            categories=filled.categories,
            performed_start=filled.performed_start,
            performed_end=filled.performed_end,
            units=filled.units,
            part2=referral.is_part2,
            version=1,
            created_at=now,
            updated_at=now,
            verbatim=filled.verbatim,
        )
    )
    uow.record(
        audit(
            principal,
            action=AuditAction.CREATE,
            operation="recordProcedure",
            resource_type="Procedure",
            resource_id=procedure.id,
            patient_id=procedure.patient_id,
        )
    )
    uow.collect(procedure.event("ProcedureRecorded", referral))
    return procedure


async def update_procedure(
    uow: UnitOfWork,
    principal: Principal,
    procedure_id: UUID,
    command: RecordProcedure,
    *,
    expected_version: int | None = None,
) -> ProcedureView:
    """Correct a delivery: only the organization that recorded it, with the same checks as
    recording; its referral, patient and performer stay. The result is shown as a read would."""
    require(principal, Capability.CORRECT_PROCEDURES)
    now = utcnow()
    _check(command, now)
    async with uow:
        (current,) = await uow.procedures.get_many([procedure_id])
        if current is None:
            raise NotFound("Procedure", procedure_id)
        if current.performer_organization_id != principal.organization_id:
            raise await refuse_one(
                uow,
                principal,
                Refusal(
                    Forbidden("only the organization that recorded a delivery updates it"),
                    current.patient_id,
                    NotFound("Procedure", procedure_id),
                    "Procedure",
                    current.id,
                ),
                action=AuditAction.UPDATE,
                operation="updateProcedure",
            )
        if expected_version is not None and expected_version != current.version:
            raise VersionConflict("Procedure", expected_version, current.version)
        if command.referral_id != current.referral_id:
            raise Invalid("a delivery stays with its referral", field="referralId")
        if command.patient_id is not None and command.patient_id != current.patient_id:
            raise Invalid("a delivery stays with its patient", field="patientId")
        referral = await _party_referral(uow, principal, command)
        filled = await _with_defaults(uow, principal, referral, command)
        _check(filled, now)
        procedure = await uow.procedures.update(
            replace(
                current,
                supporter_id=filled.supporter_id,
                status=filled.status,
                codes=filled.codes,
                categories=filled.categories,
                performed_start=filled.performed_start,
                performed_end=filled.performed_end,
                units=filled.units,
                version=current.version + 1,
                updated_at=now,
                verbatim=filled.verbatim,
            )
        )
        uow.record(
            audit(
                principal,
                action=AuditAction.UPDATE,
                operation="updateProcedure",
                resource_type="Procedure",
                resource_id=procedure.id,
                patient_id=procedure.patient_id,
            )
        )
        uow.collect(procedure.event("ProcedureUpdated", referral))
        (view,) = await _views(uow, principal, [procedure], {referral.id: referral})
        await uow.commit()
    return view


def _classes(procedure: Procedure) -> frozenset[DataClass]:
    """The referral's data classes: a delivery is part of the referral's record."""
    if procedure.part2:
        return frozenset({DataClass.REFERRAL, DataClass.SUBSTANCE_USE})
    return frozenset({DataClass.REFERRAL})


def _stub(procedure: Procedure) -> Procedure:
    return replace(
        procedure,
        codes=(),
        categories=(),
        performed_start=None,
        performed_end=None,
        units=None,
        verbatim=NOTHING_KEPT,  # what the performer sent is the patient's data too
    )


async def _views(
    uow: UnitOfWork,
    principal: Principal,
    procedures: Sequence[Procedure],
    referrals: Mapping[UUID, Referral],
) -> list[ProcedureView]:
    """Decide, as for the referral itself, whether each delivery's PHI is disclosed now."""
    decisions = await decide(
        uow,
        principal,
        [
            Disclosure(
                p.patient_id, referrals[p.referral_id].requester_organization_id, _classes(p)
            )
            for p in procedures
        ],
        utcnow(),
    )
    views = []
    records = []
    for procedure, decision in zip(procedures, decisions, strict=True):
        if decision.permitted:
            views.append(ProcedureView(procedure))
        else:
            views.append(ProcedureView(_stub(procedure), refusal(decision)))
        records.append(
            audit(
                principal,
                action=AuditAction.READ,
                operation="readProcedure",
                resource_type="Procedure",
                resource_id=procedure.id,
                patient_id=procedure.patient_id,
                consent=decision,
                detail_code=None if decision.permitted else "REDACTED",
            )
        )
    uow.record(*records)
    return views


async def _referrals_of(uow: UnitOfWork, procedures: Sequence[Procedure]) -> dict[UUID, Referral]:
    found = await uow.referrals.get_many(sorted({p.referral_id for p in procedures}))
    return {r.id: r for r in found if r is not None}


async def get_procedures(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[ProcedureView | DomainError]:
    """Procedures by id, each as the caller may see it, or why it may not."""
    require(principal, Capability.READ_PROCEDURES)
    async with uow:
        found = await hidden_beyond_caseload(
            uow,
            principal,
            ids,
            await uow.procedures.get_many(ids),
            patient_of=lambda p: p.patient_id,
            resource_type="Procedure",
            operation="readProcedure",
        )
        referrals = await _referrals_of(uow, [p for p in found if p is not None])
        mine = [
            p
            for p in found
            if p is not None and referrals[p.referral_id].role_of(principal.organization_id)
        ]
        views = {v.procedure.id: v for v in await _views(uow, principal, mine, referrals)}
        results = await per_id(
            uow,
            principal,
            ids,
            found,
            views,
            resource_type="Procedure",
            operation="readProcedure",
            refused="this delivery belongs to a referral between other organizations",
            patient_of=lambda p: p.patient_id,
        )
        await uow.commit()
    return results


async def search_procedures(
    uow: UnitOfWork, principal: Principal, where: ProcedureFilter, page: PageRequest
) -> Page[ProcedureView]:
    """Deliveries of the caller's referrals (sent or received), in `page.order`."""
    require(principal, Capability.READ_PROCEDURES)
    async with uow:
        rows = await uow.procedures.search(
            principal.organization_id,
            procedures_within_caseload(principal, where),
            page.after,
            page.first + 1,
            page.order,
        )
        found = page_from_rows(rows, page, lambda p: Keyset(p.updated_at, p.id))
        views = await _views(uow, principal, found.items, await _referrals_of(uow, found.items))
        await uow.commit()
    return Page(tuple(views), found.end_cursor, found.has_next_page)


async def outputs_of(
    uow: UnitOfWork, principal: Principal, referral_ids: Sequence[UUID]
) -> dict[UUID, tuple[UUID, ...]]:
    """The ids of the Procedures recorded for each referral the caller is party to (Task.output:
    references only; reading a Procedure applies the consent rule)."""
    require(principal, Capability.READ_REFERRALS)
    if not referral_ids:
        return {}
    async with uow:
        found = await uow.procedures.ids_for_referrals(principal.organization_id, referral_ids)
    out: dict[UUID, tuple[UUID, ...]] = {}
    for referral_id, procedure_id in found:
        out[referral_id] = (*out.get(referral_id, ()), procedure_id)
    return out


async def referrals_of(
    uow: UnitOfWork, principal: Principal, procedure_ids: Sequence[UUID]
) -> list[UUID]:
    """The referrals these Procedures were recorded for (Task search by output); callers still
    read the referrals through the tenancy and consent rule."""
    require(principal, Capability.READ_REFERRALS)
    async with uow:
        found = await uow.procedures.get_many(procedure_ids)
    return sorted({p.referral_id for p in found if p is not None})
