"""Updating a referral's Task as a whole (FHIR `PUT Task/<id>`), Gravity's rule for who may
change what: the Task's author (the requester) may update everything we store; its owner (the
performer) only `status`, `statusReason` and `output` (and the supporter it assigns); nobody else.

See https://hl7.org/fhir/us/sdoh-clinicalcare/CapabilityStatement-SDOHCC-CoordinationPlatform.html
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.errors import Forbidden, Invalid, InvalidDetail, InvalidTransition, NotFound
from api.domain.principal import Principal
from api.domain.referrals import (
    TRANSITIONS,
    Priority,
    Referral,
    ReferralStatus,
    Role,
    Transition,
)
from api.domain.verbatim import with_kept
from api.services import referrals
from api.services.policy import (
    Capability,
    Refusal,
    audit,
    party_to,
    refuse_one,
    require,
    utcnow,
)
from api.services.referrals import ReferralView
from api.services.repositories import UnitOfWork
from api.services.transactions import SharedTransaction


@dataclass(frozen=True)
class CreateTask:
    """The requester creates the Task of a referral it sent as an order alone (Gravity:
    ServiceRequest, then Task). A referral has one Task."""

    referral_id: UUID
    kept: Mapping[str, Any] = field(default_factory=dict)  # the Task's elements kept as sent


async def create_task(uow: UnitOfWork, principal: Principal, command: CreateTask) -> ReferralView:
    """Create the referral's one Task, keeping its elements; refused when it already has one."""
    require(principal, Capability.CREATE_REFERRAL)
    async with uow:
        current = await uow.referrals.get_for_update(command.referral_id)
        if current is None:
            raise NotFound("ServiceRequest", command.referral_id)
        if current.role_of(principal.organization_id) is not Role.REQUESTER:
            raise await refuse_one(
                uow,
                principal,
                Refusal(
                    Forbidden("the requester creates the referral's Task"),
                    current.patient_id,
                    NotFound("ServiceRequest", command.referral_id),
                    "Referral",
                    current.id,
                ),
                action=AuditAction.CREATE,
                operation="createTask",
            )
        if current.task_created_at is not None:
            raise Invalid(f"this ServiceRequest already has Task/{current.id}", field="focus")
        if current.status is not ReferralStatus.REQUESTED:
            raise Invalid(f"the referral is already {current.status}", field="status")
        created = await uow.referrals.record_task(
            current.id, with_kept(current.verbatim, "Task", command.kept), utcnow()
        )
        if created is None:  # another request created it since we read it
            raise Invalid(f"this ServiceRequest already has Task/{current.id}", field="focus")
        if created.version != current.version:  # created after the referral: a change
            uow.collect(created.event("ReferralTaskCreated"))
        uow.record(
            audit(
                principal,
                action=AuditAction.CREATE,
                operation="createTask",
                resource_type="Referral",
                resource_id=created.id,
                patient_id=created.patient_id,
            )
        )
        (view,) = await referrals.views_of(uow, principal, [created])
        await uow.commit()
    return view


# Elements of the Task (names as in FHIR) each party may change.
OWNER_MAY_CHANGE = frozenset({"status", "statusReason", "output", "assignedSupporter"})
AUTHOR_MAY_CHANGE = frozenset({"status", "statusReason", "output", "priority"})
# Elements PeerBridge derives or does not store: a change to them is refused, not ignored.
DERIVED = frozenset({"businessStatus", "lastModified", "meta", "output"})


@dataclass(frozen=True)
class UpdateTask:
    referral_id: UUID
    status: ReferralStatus
    status_reason: str | None
    priority: Priority | None  # None: as stored
    assigned_supporter_id: UUID | None
    # The Task elements that differ from the stored Task as the caller sees it. Asked only once
    # the caller is known to be a party, so a refused update is audited as the UPDATE it was.
    changes_from: Callable[[Referral], frozenset[str]]
    outputs: tuple[UUID, ...] = ()  # Procedures the Task names as output
    expected_version: int | None = None


def transition_to(current: ReferralStatus, target: ReferralStatus, role: Role) -> Transition:
    """The one state-machine move that takes `current` to `target` for this party."""
    for (status, move, party), reached in TRANSITIONS.items():
        if status is current and party is role and reached is target:
            return move
    raise InvalidTransition(f"the {role} cannot move a Task from {current} to {target}")


def _check_elements(changed: frozenset[str], role: Role) -> None:
    allowed = OWNER_MAY_CHANGE if role is Role.PERFORMER else AUTHOR_MAY_CHANGE
    refused = sorted(changed - allowed - DERIVED)
    if refused and role is Role.PERFORMER:
        raise Forbidden(
            f"the Task's owner may change only status, statusReason and output; "
            f"not {', '.join(refused)}"
        )
    if refused:
        raise Invalid([InvalidDetail(f"Task.{name}", "cannot be changed") for name in refused])


async def _check_outputs(uow: UnitOfWork, referral_id: UUID, outputs: tuple[UUID, ...]) -> None:
    """A Task's output is derived from the Procedures recorded for the referral: an update may
    name only those (recorded earlier, or earlier in the same transaction)."""
    found = await uow.procedures.get_many(outputs) if outputs else []
    problems = [
        InvalidDetail(f"Task.output[{index}].valueReference", "not a Procedure of this referral")
        for index, procedure in enumerate(found)
        if procedure is None or procedure.referral_id != referral_id
    ]
    if problems:
        raise Invalid(problems)


async def update_task(uow: UnitOfWork, principal: Principal, command: UpdateTask) -> ReferralView:
    """Apply a whole-Task update: state-machine move, reassignment, priority; one transaction."""
    require(principal, Capability.TRANSITION_REFERRAL)
    async with uow:
        shared = SharedTransaction(uow)
        current = await uow.referrals.get_for_update(command.referral_id)
        if current is None:
            raise NotFound("Task", command.referral_id)
        role = party_to(principal, current)
        changed: frozenset[str] = frozenset()
        try:
            if role is None:
                raise Forbidden("only the Task's author or owner may update it")
            (seen,) = await referrals.views_of(uow, principal, [current])
            changed = command.changes_from(seen.referral)
            _check_elements(changed, role)
        except Forbidden as error:
            raise await refuse_one(
                uow,
                principal,
                Refusal(
                    error, current.patient_id, NotFound("Task", current.id), "Referral", current.id
                ),
                action=AuditAction.UPDATE,
                operation="updateTask",
            ) from None
        current.check_version(command.expected_version)
        await _check_outputs(uow, current.id, command.outputs)
        version = current.version
        view: ReferralView | None = None
        if command.status is not current.status:
            move = transition_to(current.status, command.status, role)
            view = await referrals.transition_referral(
                shared,
                principal,
                current.id,
                move,
                reason=command.status_reason,
                expected_version=version,
            )
            version = view.referral.version
        elif "statusReason" in changed:
            raise Invalid("statusReason changes together with status", field="Task.statusReason")
        if "assignedSupporter" in changed and command.assigned_supporter_id is not None:
            view = await referrals.assign_supporter(
                shared,
                principal,
                current.id,
                command.assigned_supporter_id,
                expected_version=version,
            )
            version = view.referral.version
        priority = command.priority or current.priority
        if "priority" in changed and priority is not current.priority:
            latest = await uow.referrals.get_for_update(current.id)
            assert latest is not None
            reprioritized, event = latest.reprioritized(priority, utcnow())
            await uow.referrals.save(reprioritized, None)
            uow.record(
                audit(
                    principal,
                    action=AuditAction.UPDATE,
                    operation="reprioritizeReferral",
                    resource_type="Referral",
                    resource_id=current.id,
                    patient_id=current.patient_id,
                )
            )
            uow.collect(event)
            view = None
        if view is None:
            view = await referrals.get_referral(shared, principal, current.id)
        await uow.commit()
    return view
