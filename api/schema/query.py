"""The Query root: thin entry points onto the services' reads."""

from __future__ import annotations

import asyncio
import base64
import binascii
from datetime import datetime
from typing import Annotated

import strawberry

from api.domain.errors import Forbidden, Invalid, NotFound
from api.domain.text import unstorable
from api.schema.audit_event import AuditEvent
from api.schema.connection import Connection, Edge, PageInfo
from api.schema.consent import Consent, load_consent
from api.schema.context import Info
from api.schema.ids import parse_id
from api.schema.location import Location, LocationFilterInput, load_location, location_connection
from api.schema.metrics import ProgramMetrics
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.schema.patient import Patient, load_patient
from api.schema.program import PeerProgram, ProgramFilterInput, load_program, program_connection
from api.schema.referral import (
    Referral,
    ReferralFilterInput,
    load_referral,
    load_referral_with_relations,
    referral_connection,
)
from api.schema.session import load_session
from api.schema.supporter import (
    PeerSupporter,
    SupporterFilterInput,
    load_supporter,
    supporter_connection,
)
from api.schema.timeliness import FirstContactTarget, first_contact_targets
from api.schema.viewer import Viewer
from api.services import audit_trail, consents, metrics, organizations
from api.services.pagination import PageRequest

_NODE_LOADERS = (
    load_referral,
    load_patient,
    load_consent,
    load_program,
    load_location,
    load_supporter,
    load_organization,
    load_session,
)


@strawberry.type
class Query:
    @strawberry.field(description="The caller: client, organization and granted scopes.")
    def viewer(self, info: Info) -> Viewer:
        return Viewer.from_principal(info.context.principal)

    first_contact_targets: list[FirstContactTarget] = strawberry.field(
        resolver=first_contact_targets,
        description="Your organization's first-contact target per priority.",
    )

    @strawberry.field(description="Any entity by id, as the caller may see it.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        node_id = parse_id(id, "id")
        outcomes = await asyncio.gather(
            *(load(info, node_id) for load in _NODE_LOADERS), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, Node):
                return outcome
        # Prefer the reason the caller may not see it (tenancy, consent) over "not found"
        # answers from the other kinds; a missing scope on another kind is no reason.
        for outcome in outcomes:
            if isinstance(outcome, NotFound) or (
                isinstance(outcome, Forbidden) and outcome.needed_scope is not None
            ):
                continue
            if isinstance(outcome, BaseException):
                raise outcome
        raise NotFound("Node", node_id)

    @strawberry.field(description="The directory of organizations, by name.")
    async def organizations(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[Organization] | None:
        page = PageRequest.of(first, None)
        found = await organizations.list_organizations(
            info.context.unit_of_work(),
            info.context.principal,
            after_name=_name_after(after),
            limit=page.first + 1,
        )
        items = found[: page.first]
        edges = [
            Edge(node=Organization.from_domain(o), position=_name_cursor(o.name)) for o in items
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(found) > page.first,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )

    @strawberry.field
    async def organization(self, info: Info, id: strawberry.ID) -> Organization | None:
        return await load_organization(info, parse_id(id, "id"))

    @strawberry.field(description="The peer program directory, newest change first.")
    async def peer_programs(
        self,
        info: Info,
        filter: ProgramFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[PeerProgram] | None:
        return await program_connection(info, filter, first, after)

    @strawberry.field
    async def peer_program(self, info: Info, id: strawberry.ID) -> PeerProgram | None:
        return await load_program(info, parse_id(id, "id"))

    @strawberry.field(description="Peer supporters, newest change first.")
    async def peer_supporters(
        self,
        info: Info,
        filter: SupporterFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[PeerSupporter] | None:
        return await supporter_connection(info, filter, first, after)

    @strawberry.field(description="Where peer programs meet, newest change first.")
    async def locations(
        self,
        info: Info,
        filter: LocationFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Location] | None:
        return await location_connection(info, filter, first, after)

    @strawberry.field
    async def location(self, info: Info, id: strawberry.ID) -> Location | None:
        return await load_location(info, parse_id(id, "id"))

    @strawberry.field
    async def peer_supporter(self, info: Info, id: strawberry.ID) -> PeerSupporter | None:
        return await load_supporter(info, parse_id(id, "id"))

    @strawberry.field(description="A participant, when you hold the record or have consent.")
    async def patient(self, info: Info, id: strawberry.ID) -> Patient | None:
        return await load_patient(info, parse_id(id, "id"))

    @strawberry.field(description="Your referrals (sent, received or both), newest change first.")
    async def referrals(
        self,
        info: Info,
        filter: ReferralFilterInput | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Referral] | None:
        where = (filter or ReferralFilterInput()).to_filter()
        return await referral_connection(info, where, first, after)

    @strawberry.field
    async def referral(self, info: Info, id: strawberry.ID) -> Referral | None:
        return await load_referral_with_relations(info, parse_id(id, "id"))

    @strawberry.field(description="A patient's consents your organization is party to.")
    async def consents(self, info: Info, patient_id: strawberry.ID) -> list[Consent] | None:
        found = await consents.list_consents(
            info.context.unit_of_work(), info.context.principal, parse_id(patient_id, "patientId")
        )
        return [Consent.from_domain(consent) for consent in found]

    @strawberry.field(
        description="Accesses to a patient's data, newest first: every access for the holding "
        "organization (accounting of disclosures), your own accesses otherwise."
    )
    async def audit_events(
        self,
        info: Info,
        patient_id: strawberry.ID,
        first: int = 50,
        before: datetime | None = None,
    ) -> list[AuditEvent] | None:
        found = await audit_trail.list_audit_events(
            info.context.unit_of_work(),
            info.context.principal,
            parse_id(patient_id, "patientId"),
            before=before,
            limit=first,
        )
        return [AuditEvent.from_domain(event) for event in found]

    @strawberry.field(description="De-identified counts for a program, small cells suppressed.")
    async def program_metrics(
        self,
        info: Info,
        program_id: strawberry.ID,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> ProgramMetrics | None:
        found = await metrics.program_metrics(
            info.context.unit_of_work(),
            info.context.principal,
            parse_id(program_id, "programId"),
            from_,
            to,
        )
        return ProgramMetrics.from_domain(found)


def _name_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _name_after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    name: str | None
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        name = None
    # No organization name holds NUL: such a cursor was never issued (and SQL cannot take it).
    if name is None or unstorable(name) is not None:
        raise Invalid("the cursor is not one this API issued", field="after")
    return name
