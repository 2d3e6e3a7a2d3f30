"""Session: a group or one-on-one session of a peer program (FHIR Encounter per attendee)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import sessions as domain
from api.domain.programs import DeliveryMode
from api.domain.sessions import SessionFormat
from api.integrations.fhir.resources.sessions import to_fhir_session_encounter
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.schema.program import PeerProgram, load_program
from api.schema.supporter import PeerSupporter

if TYPE_CHECKING:
    from api.schema.attendance import Attendance


@strawberry.type(description="A session of a peer program.")
class Session(Node):
    id: strawberry.ID
    format: SessionFormat
    delivery_mode: DeliveryMode
    starts_at: datetime
    ends_at: datetime
    minutes: int
    capacity: int | None
    topic: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.PeerSession]

    @classmethod
    def from_domain(cls, session: domain.PeerSession) -> Session:
        return cls(
            id=to_id(session.id),
            format=session.format,
            delivery_mode=session.delivery_mode,
            starts_at=session.starts_at,
            ends_at=session.ends_at,
            minutes=session.minutes,
            capacity=session.capacity,
            topic=session.topic,
            version=session.version,
            created_at=session.created_at,
            updated_at=session.updated_at,
            record=session,
        )

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_session_encounter(self.record))

    @strawberry.field
    async def program(self, info: Info) -> PeerProgram | None:
        return await load_program(info, self.record.program_id)

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.organization_id)

    @strawberry.field
    async def facilitators(self, info: Info) -> list[PeerSupporter] | None:
        found = await info.context.loaders.supporters.load_many(list(self.record.facilitator_ids))
        return [PeerSupporter.from_domain(supporter) for supporter in found]

    @strawberry.field(description="Attendance you recorded or may see under consent.")
    async def attendance(
        self, info: Info
    ) -> list[Annotated[Attendance, strawberry.lazy("api.schema.attendance")]] | None:
        from api.schema.attendance import Attendance

        found = await info.context.loaders.attendance_by_session.load(self.record.id)
        return [Attendance.from_domain(attendance) for attendance in found]


async def load_session(info: Info, session_id: UUID) -> Session:
    return Session.from_domain(await info.context.loaders.sessions.load(session_id))
