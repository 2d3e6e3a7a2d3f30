"""Referrals and their Task state machine (HL7 Gravity SDOH Clinical Care, BSeR business status).

See https://hl7.org/fhir/us/sdoh-clinicalcare/referral_workflow.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.consents import DataClass
from api.domain.errors import Forbidden, Invalid, InvalidTransition, VersionConflict
from api.domain.events import DomainEvent
from api.domain.verbatim import NOTHING_KEPT, Verbatim


class ReferralStatus(StrEnum):
    """FHIR Task.status values PeerBridge uses."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        ReferralStatus.REJECTED,
        ReferralStatus.COMPLETED,
        ReferralStatus.FAILED,
        ReferralStatus.CANCELLED,
    }
)
# Statuses in which a referral counts against its assigned supporter's caseload.
OPEN_STATUSES = frozenset(
    {ReferralStatus.ACCEPTED, ReferralStatus.IN_PROGRESS, ReferralStatus.ON_HOLD}
)


class Direction(StrEnum):
    CLINIC_TO_PEER = "clinic_to_peer"
    PEER_TO_CLINIC = "peer_to_clinic"


class Priority(StrEnum):
    """FHIR request-priority."""

    ROUTINE = "routine"
    URGENT = "urgent"
    ASAP = "asap"
    STAT = "stat"


class Transition(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"


class Role(StrEnum):
    """The caller's side of a referral."""

    REQUESTER = "requester"
    PERFORMER = "performer"


_S = ReferralStatus
_PERFORMER_MOVES: dict[tuple[ReferralStatus, Transition], ReferralStatus] = {
    (_S.REQUESTED, Transition.ACCEPT): _S.ACCEPTED,
    (_S.REQUESTED, Transition.REJECT): _S.REJECTED,
    (_S.ACCEPTED, Transition.START): _S.IN_PROGRESS,
    (_S.IN_PROGRESS, Transition.HOLD): _S.ON_HOLD,
    (_S.ON_HOLD, Transition.RESUME): _S.IN_PROGRESS,
    (_S.IN_PROGRESS, Transition.COMPLETE): _S.COMPLETED,
    (_S.IN_PROGRESS, Transition.FAIL): _S.FAILED,
}
TRANSITIONS: dict[tuple[ReferralStatus, Transition, Role], ReferralStatus] = {
    **{
        (status, move, Role.PERFORMER): target
        for (status, move), target in _PERFORMER_MOVES.items()
    },
    **{
        (status, Transition.CANCEL, Role.REQUESTER): _S.CANCELLED
        for status in ReferralStatus
        if not status.is_final
    },
}
REASON_REQUIRED = frozenset(
    {Transition.REJECT, Transition.CANCEL, Transition.FAIL, Transition.HOLD}
)

BSER_SYSTEM = "http://hl7.org/fhir/us/bser/CodeSystem/TaskBusinessStatusCS"
# BSeR Task.businessStatus for each status (code, display); on-hold has no BSeR counterpart.
BUSINESS_STATUS: dict[ReferralStatus, tuple[str, str] | None] = {
    _S.REQUESTED: ("2.0", "Service Request Created"),
    _S.ACCEPTED: ("3.0", "Service Request Accepted"),
    _S.REJECTED: ("4.0", "Service Request Declined"),
    _S.IN_PROGRESS: ("5.1.1", "Service Request Event Scheduled"),
    _S.ON_HOLD: None,
    _S.COMPLETED: ("7.0", "Service Request Fulfillment Completed"),
    _S.FAILED: ("6.0", "Service Request Fulfillment Cancelled"),
    _S.CANCELLED: ("6.0", "Service Request Fulfillment Cancelled"),
}


@dataclass(frozen=True)
class Coding:
    system: str
    code: str
    display: str | None = None


@dataclass(frozen=True)
class OrderIdentifier:
    """A business identifier of the order (a placer or filler order number); `system` is None
    when the sender gave none."""

    system: str | None
    value: str


SNOMED_SYSTEM = "http://snomed.info/sct"
# The services a PeerBridge referral may order (SNOMED CT procedures): peer support itself and
# the behavioural-health services a peer organization escalates to. Sources: the SNOMED CT US
# extension (461481000124109) and the eCQM value sets "Referral for Adult Depression" and
# "Referral for Adolescent Depression" (VSAC 2.16.840.1.113883.3.526.3.1571 / .1570), less their
# general-medicine members. The README lists them for integrators; the CapabilityStatement too.
PEER_SUPPORT_SERVICES: dict[str, str] = {
    "461481000124109": "Referral to peer support",
    "711281004": "Referral to support group",
    "390866009": "Referral to mental health team",
    "183583007": "Refer to mental health worker",
    "306226009": "Referral to mental health counseling service",
    "306227000": "Referral for mental health counseling",
    "306252003": "Referral to mental health counselor",
    "183524004": "Referral to psychiatry service",
    "306136006": "Referral to liaison psychiatry service",
    "308477009": "Referral to psychiatrist",
    "306291008": "Referral to child and adolescent psychiatrist",
    "308459004": "Referral to psychologist",
    "306343005": "Referral to psychotherapist",
    "710914003": "Referral to family therapy",
}
# The service a referral orders when its sender names none (GraphQL): by direction.
DEFAULT_SERVICE: dict[Direction, Coding] = {
    Direction.CLINIC_TO_PEER: Coding(SNOMED_SYSTEM, "461481000124109", "Referral to peer support"),
    Direction.PEER_TO_CLINIC: Coding(SNOMED_SYSTEM, "390866009", "Referral to mental health team"),
}


def check_service_code(code: Sequence[Coding]) -> None:
    """A referral orders a peer-support or behavioural-health service: one of its codings (any
    others are kept beside it) must be in `PEER_SUPPORT_SERVICES`."""
    if not any(c.system == SNOMED_SYSTEM and c.code in PEER_SUPPORT_SERVICES for c in code):
        raise Invalid(
            "not a peer-support or behavioural-health service: PeerBridge carries peer-support "
            "referrals (the SNOMED CT codes it takes are listed in its CapabilityStatement)",
            field="code",
        )


@dataclass(frozen=True)
class Actor:
    """Who did something: the client, its organization and the end user, if any."""

    organization_id: UUID
    client_id: str
    subject: str


@dataclass(frozen=True)
class StatusChange:
    from_status: ReferralStatus | None
    to_status: ReferralStatus
    transition: Transition | None
    reason: str | None
    actor: Actor
    at: datetime
    version: int


@dataclass(frozen=True)
class Referral:
    id: UUID
    direction: Direction
    requester_organization_id: UUID
    performer_organization_id: UUID
    program_id: UUID | None
    patient_id: UUID
    priority: Priority
    reason_codes: tuple[Coding, ...]
    reason_text: str | None
    shared_data_classes: frozenset[DataClass]
    consent_id: UUID | None
    status: ReferralStatus
    status_reason: str | None
    assigned_supporter_id: UUID | None
    escalated_from_id: UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    # The ordered service as sent (empty: the default of the direction), every category coding
    # sent, the order's business identifiers, when its Task was created (None: a ServiceRequest
    # whose Task the requester has not created yet), and the source documents' other elements.
    code: tuple[Coding, ...] = ()
    categories: tuple[Coding, ...] = ()
    identifiers: tuple[OrderIdentifier, ...] = ()
    task_created_at: datetime | None = None
    verbatim: Verbatim = field(default_factory=lambda: NOTHING_KEPT)

    @property
    def service(self) -> tuple[Coding, ...]:
        return self.code or (DEFAULT_SERVICE[self.direction],)

    def withheld(self) -> Referral:
        """The stub a party sees when consent does not cover the referral's patient data: ids,
        parties, status and dates; no reasons, codes the sender chose, identifiers or kept
        elements."""
        return replace(
            self,
            reason_codes=(),
            reason_text=None,
            code=(),
            categories=(),
            identifiers=(),
            verbatim=NOTHING_KEPT,
        )

    @property
    def business_status(self) -> tuple[str, str] | None:
        return BUSINESS_STATUS[self.status]

    @property
    def is_part2(self) -> bool:
        return DataClass.SUBSTANCE_USE in self.shared_data_classes

    def role_of(self, organization_id: UUID) -> Role | None:
        if organization_id == self.requester_organization_id:
            return Role.REQUESTER
        if organization_id == self.performer_organization_id:
            return Role.PERFORMER
        return None

    def check_version(self, expected_version: int | None) -> None:
        if expected_version is not None and expected_version != self.version:
            raise VersionConflict("Referral", expected_version, self.version)

    def reprioritized(self, priority: Priority, at: datetime) -> tuple[Referral, DomainEvent]:
        """The referral at another priority (its next version) and the event announcing it."""
        changed = replace(self, priority=priority, version=self.version + 1, updated_at=at)
        return changed, DomainEvent(
            "ReferralReprioritized",
            "Referral",
            changed.id,
            (changed.requester_organization_id, changed.performer_organization_id),
            {"priority": changed.priority.value, "version": changed.version},
        )

    def event(self, event_type: str, **extra: object) -> DomainEvent:
        """What happened to this referral, announced to both parties (ids and codes only);
        `extra` adds to the payload."""
        return DomainEvent(
            event_type,
            "Referral",
            self.id,
            (self.requester_organization_id, self.performer_organization_id),
            {
                "status": self.status.value,
                "version": self.version,
                "priority": self.priority.value,
                "direction": self.direction.value,
                **extra,
            },
        )


EVENT_OF_TRANSITION = {
    Transition.ACCEPT: "ReferralAccepted",
    Transition.REJECT: "ReferralRejected",
    Transition.START: "ReferralStarted",
    Transition.HOLD: "ReferralPutOnHold",
    Transition.RESUME: "ReferralResumed",
    Transition.COMPLETE: "ReferralCompleted",
    Transition.FAIL: "ReferralFailed",
    Transition.CANCEL: "ReferralCancelled",
}


def allowed_transitions(status: ReferralStatus, role: Role) -> tuple[Transition, ...]:
    return tuple(t for (s, t, r) in TRANSITIONS if s is status and r is role)


def apply_transition(
    referral: Referral,
    transition: Transition,
    *,
    role: Role | None,
    reason: str | None,
    expected_version: int | None,
    actor: Actor,
    at: datetime,
) -> tuple[Referral, StatusChange, DomainEvent]:
    """Move the referral, or refuse: wrong party, state, missing reason, or stale version.
    With the moved referral come its history entry and the event announcing the move."""
    if role is None:
        raise Forbidden("only the requester or the performer of a referral may change it")
    referral.check_version(expected_version)
    target = TRANSITIONS.get((referral.status, transition, role))
    if target is None:
        allowed = ", ".join(allowed_transitions(referral.status, role)) or "none"
        raise InvalidTransition(
            f"the {role} cannot {transition} a referral that is {referral.status} "
            f"(allowed: {allowed})"
        )
    reason = (reason or "").strip() or None
    if transition in REASON_REQUIRED and reason is None:
        raise Invalid(f"a reason is required to {transition} a referral", field="reason")
    changed = replace(
        referral,
        status=target,
        status_reason=reason,
        version=referral.version + 1,
        updated_at=at,
    )
    change = StatusChange(referral.status, target, transition, reason, actor, at, changed.version)
    return changed, change, changed.event(EVENT_OF_TRANSITION[transition])
