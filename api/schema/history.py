"""A referral's status changes: who moved it, when, and why."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain import referrals as domain
from api.domain.referrals import ReferralStatus, Transition
from api.schema.context import Info
from api.schema.organization import Organization, load_organization


@strawberry.type(description="Who did something: the OAuth client, its organization, the user.")
class Actor:
    client_id: str
    subject: str
    record: strawberry.Private[domain.Actor]

    @strawberry.field
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.organization_id)


@strawberry.type(description="One step of a referral's history.")
class StatusChange:
    from_status: ReferralStatus | None
    to_status: ReferralStatus
    transition: Transition | None
    reason: str | None
    actor: Actor
    at: datetime
    version: int

    @classmethod
    def from_domain(cls, change: domain.StatusChange) -> StatusChange:
        return cls(
            from_status=change.from_status,
            to_status=change.to_status,
            transition=change.transition,
            reason=change.reason,
            actor=Actor(
                client_id=change.actor.client_id, subject=change.actor.subject, record=change.actor
            ),
            at=change.at,
            version=change.version,
        )
