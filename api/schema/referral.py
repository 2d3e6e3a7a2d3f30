"""Referral: requester → performer, on the Gravity Task workflow (FHIR ServiceRequest + Task).

PHI fields (reason, patient) are null with a CONSENT_REQUIRED / CONSENT_REVOKED error when the
services withheld them; the stub (ids, status, dates) stays so the performer's workflow holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain.consents import PART2_REDISCLOSURE_NOTICE, DataClass
from api.domain.referrals import (
    BSER_SYSTEM,
    Direction,
    Priority,
    ReferralStatus,
    Role,
    Transition,
    allowed_transitions,
)
from api.integrations.fhir.resources.referrals import to_fhir_service_request, to_fhir_task
from api.schema.coding import Coding
from api.schema.connection import Connection, connection_from_page
from api.schema.consent import Consent, load_consent
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.history import StatusChange
from api.schema.ids import parse_id, parse_optional_id, to_id
from api.schema.lookahead import prefetch, resolved, selects
from api.schema.node import Node
from api.schema.organization import Organization
from api.schema.patient import Patient
from api.schema.program import PeerProgram
from api.schema.supporter import PeerSupporter
from api.services import referrals
from api.services.filters import ReferralBox, ReferralFilter
from api.services.pagination import Keyset, Page, PageRequest
from api.services.referrals import ReferralView
from api.services.repositories import NO_RELATIONS, ReferralRelations


@strawberry.federation.type(
    keys=["id"], description="A referral between organizations (FHIR ServiceRequest + Task)."
)
class Referral(Node):
    id: strawberry.ID
    version: int = strawberry.field(description="Send it back as `expectedVersion` to move it.")
    direction: Direction
    status: ReferralStatus
    status_reason: str | None
    priority: Priority
    role: Role = strawberry.field(description="Your side of this referral.")
    shared_data_classes: list[DataClass]
    patient_id: strawberry.ID
    created_at: datetime
    updated_at: datetime
    view: strawberry.Private[ReferralView]

    @classmethod
    def from_view(cls, view: ReferralView) -> Referral:
        referral = view.referral
        return cls(
            id=to_id(referral.id),
            version=referral.version,
            direction=referral.direction,
            status=referral.status,
            status_reason=referral.status_reason,
            priority=referral.priority,
            role=view.role,
            shared_data_classes=sorted(referral.shared_data_classes),
            patient_id=to_id(referral.patient_id),
            created_at=referral.created_at,
            updated_at=referral.updated_at,
            view=view,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Referral:
        return await load_referral(info, parse_id(id, "id"))

    def _disclosed(self) -> None:
        if self.view.withheld is not None:
            raise self.view.withheld

    @strawberry.field(description="Why the patient is referred (withheld without consent).")
    def reason_text(self) -> str | None:
        self._disclosed()
        return self.view.referral.reason_text

    @strawberry.field(description="Coded reasons (withheld without consent).")
    def reason_codes(self) -> list[Coding] | None:
        self._disclosed()
        return [Coding.from_domain(code) for code in self.view.referral.reason_codes]

    @strawberry.field(description="42 CFR Part 2 notice that travels with substance-use data.")
    def redisclosure_notice(self) -> str | None:
        return PART2_REDISCLOSURE_NOTICE if self.view.referral.is_part2 else None

    @strawberry.field(description="BSeR Task.businessStatus; null for on-hold.")
    def business_status(self) -> Coding | None:
        status = self.view.referral.business_status
        return (
            None
            if status is None
            else Coding(system=BSER_SYSTEM, code=status[0], display=status[1])
        )

    @strawberry.field(description="The moves your organization may make now.")
    def allowed_transitions(self) -> list[Transition]:
        return list(allowed_transitions(self.status, self.role))

    @strawberry.field(description=FHIR_DESCRIPTION + " ServiceRequest; redacted when withheld.")
    def fhir(self) -> JSON:
        redacted = self.view.withheld is not None
        return as_json(to_fhir_service_request(self.view.referral, redacted=redacted))

    @strawberry.field(description="The referral's FHIR Task (Gravity workflow state, with the "
                      "delivered Procedures as output).")
    async def fhir_task(self, info: Info) -> JSON:
        redacted = self.view.withheld is not None
        outputs = await info.context.loaders.task_outputs.load(self.view.referral.id)
        return as_json(to_fhir_task(self.view.referral, redacted=redacted, outputs=outputs))

    # The relations answer from the loaders, at once when the page prefetched them.

    @strawberry.field(description="The patient (null with a consent error when withheld).")
    def patient(self, info: Info) -> Patient | None:
        self._disclosed()
        loader = info.context.loaders.patients
        return resolved(loader, self.view.referral.patient_id, Patient.from_domain)

    @strawberry.field
    def requester(self, info: Info) -> Organization | None:
        loader = info.context.loaders.organizations
        return resolved(
            loader, self.view.referral.requester_organization_id, Organization.from_domain
        )

    @strawberry.field
    def performer(self, info: Info) -> Organization | None:
        loader = info.context.loaders.organizations
        return resolved(
            loader, self.view.referral.performer_organization_id, Organization.from_domain
        )

    @strawberry.field
    def program(self, info: Info) -> PeerProgram | None:
        program_id = self.view.referral.program_id
        if program_id is None:
            return None
        return resolved(info.context.loaders.programs, program_id, PeerProgram.from_domain)

    @strawberry.field
    def assigned_supporter(self, info: Info) -> PeerSupporter | None:
        supporter_id = self.view.referral.assigned_supporter_id
        if supporter_id is None:
            return None
        loader = info.context.loaders.supporters
        return resolved(loader, supporter_id, PeerSupporter.from_domain)

    @strawberry.field(description="The consent the referral was sent under.")
    async def consent(self, info: Info) -> Consent | None:
        consent_id = self.view.referral.consent_id
        return None if consent_id is None else await load_consent(info, consent_id)

    @strawberry.field(description="The referral this one escalates (peer → clinic).")
    async def escalated_from(self, info: Info) -> Referral | None:
        original = self.view.referral.escalated_from_id
        return None if original is None else await load_referral(info, original)

    @strawberry.field(description="Every status change: who, when, why.")
    async def history(self, info: Info) -> list[StatusChange] | None:
        changes = await info.context.loaders.referral_histories.load(self.view.referral.id)
        return [StatusChange.from_domain(change) for change in changes]


async def load_referral(info: Info, referral_id: UUID) -> Referral:
    return Referral.from_view(await info.context.loaders.referrals.load(referral_id))


async def load_referral_with_relations(info: Info, referral_id: UUID) -> Referral:
    """A referral with the relations the operation selects under it, read together in one
    statement; their fields then answer from the loaders it primed."""
    relations = _selected_relations(info)
    if relations == NO_RELATIONS:
        return await load_referral(info, referral_id)
    view = await info.context.loaders.referrals_with(relations).load(referral_id)
    _prime(info, [view])
    return Referral.from_view(view)


def _selected_relations(
    info: Info, paths: Sequence[tuple[str, ...]] = ((),)
) -> ReferralRelations:
    """The relations the operation selects under the referrals at `paths` of this field."""
    return ReferralRelations(
        patient=any(selects(info, *path, "patient") for path in paths),
        program=any(selects(info, *path, "program") for path in paths),
    )


def _prime(info: Info, views: Sequence[ReferralView]) -> None:
    """Put the referrals, and the relations read with them, in the request's loaders."""
    loaders = info.context.loaders
    for view in views:
        loaders.referrals.prime(view.referral.id, view)
        if view.patient is not None:
            loaders.patients.prime(view.patient.id, view.patient)
        if view.program is not None:
            loaders.programs.prime(view.program.id, view.program)


@strawberry.input(description="Narrow the referral list; every condition must hold.")
class ReferralFilterInput:
    box: ReferralBox = ReferralBox.ALL
    direction: list[Direction] | None = None
    status: list[ReferralStatus] | None = None
    priority: list[Priority] | None = None
    program_id: strawberry.ID | None = None
    assigned_supporter_id: strawberry.ID | None = None
    updated_since: datetime | None = strawberry.field(
        default=None, description="Only referrals changed after this instant (exclusive)."
    )
    overdue: bool | None = strawberry.field(
        default=None,
        description="True: only referrals still requested past their first-contact target "
        "(`firstContactTargets`); false: only the others.",
    )

    def to_filter(self, *, patient_id: UUID | None = None) -> ReferralFilter:
        return ReferralFilter(
            box=self.box,
            directions=frozenset(self.direction or ()),
            statuses=frozenset(self.status or ()),
            priorities=frozenset(self.priority or ()),
            program_id=parse_optional_id(self.program_id, "filter.programId"),
            patient_id=patient_id,
            assigned_supporter_id=parse_optional_id(
                self.assigned_supporter_id, "filter.assignedSupporterId"
            ),
            updated_since=self.updated_since,
            overdue=self.overdue,
        )


# Where a connection's nodes are selected.
_NODE_PATHS = (("edges", "node"), ("nodes",))


async def referral_connection(
    info: Info, where: ReferralFilter, first: int | None, after: str | None
) -> Connection[Referral]:
    relations = _selected_relations(info, _NODE_PATHS)
    page = await referrals.list_referrals(
        info.context.unit_of_work(),
        info.context.principal,
        where,
        PageRequest.of(first, after),
        relations,
    )
    return await _connection(info, page)


async def referrals_of_patient(
    info: Info, patient_id: UUID, where: ReferralFilter, first: int | None, after: str | None
) -> Connection[Referral]:
    """One patient's referrals, batched with every other patient in the response."""
    loader = info.context.loaders.referrals_of_patients(where, PageRequest.of(first, after))
    return await _connection(info, await loader.load(patient_id))


async def _connection(info: Info, page: Page[ReferralView]) -> Connection[Referral]:
    _prime(info, page.items)
    await _prefetch_relations(info, page.items)
    return connection_from_page(
        page, Referral.from_view, lambda v: Keyset(v.referral.updated_at, v.referral.id)
    )


async def _prefetch_relations(info: Info, views: Sequence[ReferralView]) -> None:
    """One batch per relation the operation selects under the page's nodes."""
    loaders = info.context.loaders
    shown = [v.referral for v in views]
    disclosed = [v.referral for v in views if v.withheld is None]
    batches = []
    for path in _NODE_PATHS:
        if selects(info, *path, "patient"):
            batches.append(prefetch(loaders.patients, (r.patient_id for r in disclosed)))
        if selects(info, *path, "program"):
            batches.append(prefetch(loaders.programs, (r.program_id for r in shown)))
        if selects(info, *path, "assignedSupporter"):
            supporters = (r.assigned_supporter_id for r in shown)
            batches.append(prefetch(loaders.supporters, supporters))
        for relation, organization in (
            ("requester", lambda r: r.requester_organization_id),
            ("performer", lambda r: r.performer_organization_id),
        ):
            if selects(info, *path, relation):
                batches.append(prefetch(loaders.organizations, map(organization, shown)))
    await asyncio.gather(*batches)
