"""Referral mutations: create, the workflow moves, assignment and escalation."""

from __future__ import annotations

from typing import Any

import strawberry

from api.domain.consents import DataClass
from api.domain.errors import Invalid
from api.domain.referrals import Priority, Transition
from api.schema.coding import CodingInput
from api.schema.context import Info
from api.schema.ids import parse_id, parse_optional_id
from api.schema.referral import Referral
from api.services import referrals
from api.services.referrals import DEFAULT_SHARED, CreateReferral, EscalateReferral, ReferralView

_IDEMPOTENCY = "Repeating a request with the same key replays its first result."


def _classes(listed: list[DataClass]) -> frozenset[DataClass]:
    """A set as the service takes it; a class listed twice is refused, not merged."""
    if len(set(listed)) != len(listed):
        raise Invalid("each data class once", field="input.sharedDataClasses")
    return frozenset(listed)


@strawberry.input(description="Send a consented referral to another organization.")
class CreateReferralInput:
    patient_id: strawberry.ID
    performer_organization_id: strawberry.ID
    priority: Priority = Priority.ROUTINE
    program_id: strawberry.ID | None = None
    reason_codes: list[CodingInput] | None = None
    reason_text: str | None = None
    shared_data_classes: list[DataClass] = strawberry.field(
        default_factory=lambda: sorted(DEFAULT_SHARED),
        description="The patient's consent must name the performer for each of these.",
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY)

    def to_command(self) -> CreateReferral:
        return CreateReferral(
            patient_id=parse_id(self.patient_id, "input.patientId"),
            performer_organization_id=parse_id(
                self.performer_organization_id, "input.performerOrganizationId"
            ),
            priority=self.priority,
            program_id=parse_optional_id(self.program_id, "input.programId"),
            reason_codes=tuple(code.to_domain() for code in self.reason_codes or ()),
            reason_text=self.reason_text,
            shared_data_classes=_classes(self.shared_data_classes),
        )


@strawberry.input(description="Move a referral along its workflow.")
class ReferralTransitionInput:
    referral_id: strawberry.ID
    expected_version: int | None = strawberry.field(
        default=None, description="The version you last saw; a stale one is a CONFLICT."
    )
    reason: str | None = strawberry.field(
        default=None, description="Required to reject, cancel, fail or hold."
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY)


@strawberry.input(description="Refer a participant you are working with on to a clinic.")
class EscalateReferralInput:
    referral_id: strawberry.ID
    clinic_organization_id: strawberry.ID
    priority: Priority = Priority.URGENT
    reason_codes: list[CodingInput] | None = None
    reason_text: str | None = None
    shared_data_classes: list[DataClass] = strawberry.field(
        default_factory=lambda: sorted(DEFAULT_SHARED)
    )
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY)

    def to_command(self) -> EscalateReferral:
        return EscalateReferral(
            referral_id=parse_id(self.referral_id, "input.referralId"),
            clinic_organization_id=parse_id(
                self.clinic_organization_id, "input.clinicOrganizationId"
            ),
            priority=self.priority,
            reason_codes=tuple(code.to_domain() for code in self.reason_codes or ()),
            reason_text=self.reason_text,
            shared_data_classes=_classes(self.shared_data_classes),
        )


@strawberry.input(
    description="After a safety signal: refer the participant on to a clinic at once (`stat`)."
)
class WarmHandoffInput:
    referral_id: strawberry.ID = strawberry.field(description="The referral you are working.")
    clinic_organization_id: strawberry.ID
    reason_text: str | None = None
    idempotency_key: str | None = strawberry.field(default=None, description=_IDEMPOTENCY)


@strawberry.input(description="Assign a certified peer supporter with free caseload.")
class AssignSupporterInput:
    referral_id: strawberry.ID
    supporter_id: strawberry.ID
    expected_version: int | None = None


def _changed(info: Info, view: ReferralView) -> Referral:
    info.context.loaders.referrals.prime(view.referral.id, view, force=True)
    return Referral.from_view(view)


def _transition(transition: Transition, description: str) -> Any:
    async def move(info: Info, input: ReferralTransitionInput) -> Referral | None:
        view = await referrals.transition_referral(
            info.context.unit_of_work(),
            info.context.principal,
            parse_id(input.referral_id, "input.referralId"),
            transition,
            reason=input.reason,
            expected_version=input.expected_version,
            idempotency_key=input.idempotency_key,
        )
        return _changed(info, view)

    return strawberry.mutation(resolver=move, description=description)


@strawberry.type
class ReferralMutations:
    accept_referral = _transition(Transition.ACCEPT, "Performer: accept a requested referral.")
    reject_referral = _transition(Transition.REJECT, "Performer: decline, with a reason.")
    start_referral = _transition(Transition.START, "Performer: begin work on it.")
    hold_referral = _transition(Transition.HOLD, "Performer: pause it, with a reason.")
    resume_referral = _transition(Transition.RESUME, "Performer: resume a paused referral.")
    complete_referral = _transition(Transition.COMPLETE, "Performer: fulfilled.")
    fail_referral = _transition(Transition.FAIL, "Performer: could not fulfil, with a reason.")
    cancel_referral = _transition(Transition.CANCEL, "Requester: withdraw it, with a reason.")

    @strawberry.mutation(description="Send a consented referral (ServiceRequest + Task).")
    async def create_referral(self, info: Info, input: CreateReferralInput) -> Referral | None:
        view = await referrals.create_referral(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return _changed(info, view)

    @strawberry.mutation(description="Peer → clinic referral linked to the one being worked.")
    async def escalate_referral(self, info: Info, input: EscalateReferralInput) -> Referral | None:
        view = await referrals.escalate_referral(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return _changed(info, view)

    @strawberry.mutation(
        description="Warm handoff in one call: a `stat` peer → clinic referral linked to the "
        "one being worked (an escalation), announced to the clinic at once."
    )
    async def warm_handoff(self, info: Info, input: WarmHandoffInput) -> Referral | None:
        view = await referrals.warm_handoff(
            info.context.unit_of_work(),
            info.context.principal,
            parse_id(input.referral_id, "input.referralId"),
            parse_id(input.clinic_organization_id, "input.clinicOrganizationId"),
            reason_text=input.reason_text,
            idempotency_key=input.idempotency_key,
        )
        return _changed(info, view)

    @strawberry.mutation(
        description="Assign a peer supporter (idempotent: assigning the same one is a no-op)."
    )
    async def assign_supporter(self, info: Info, input: AssignSupporterInput) -> Referral | None:
        view = await referrals.assign_supporter(
            info.context.unit_of_work(),
            info.context.principal,
            parse_id(input.referral_id, "input.referralId"),
            parse_id(input.supporter_id, "input.supporterId"),
            expected_version=input.expected_version,
        )
        return _changed(info, view)
