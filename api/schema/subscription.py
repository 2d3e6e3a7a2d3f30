"""The Subscription root: referral events over `graphql-transport-ws`, resumable by cursor.

An event reaches a subscriber only after its change committed (outbox + NOTIFY, fanned out by
api/events), and only after the services decided, at that moment, that the subscriber may see
the referral: tenancy (requester or performer organization) and consent (a revoked consent
delivers the redacted stub, exactly as a query would). The token is checked again per event.
Every event carries its `cursor`; subscribing `after` one replays, in commit order, what the
subscriber missed since, then goes on live (api/events/fanout.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry

from api.domain.errors import Forbidden, NotFound
from api.domain.events import PublishedEvent, decode_cursor, encode_cursor
from api.domain.referrals import Direction, Priority, ReferralStatus
from api.events.fanout import OutboxFanOut
from api.schema.context import Info
from api.schema.ids import to_id
from api.schema.referral import Referral
from api.services import referrals
from api.services.referrals import ReferralView


@strawberry.input(description="Which referral events to receive; every condition must hold.")
class ReferralEventFilterInput:
    status: list[ReferralStatus] | None = strawberry.field(
        default=None, description="The referral's status after the change."
    )
    priority: list[Priority] | None = None
    direction: list[Direction] | None = None

    def matches(self, published: PublishedEvent) -> bool:
        event = published.event
        if event.aggregate_type != "Referral":
            return False
        payload = event.payload
        return all(
            not wanted or payload.get(key) in {value.value for value in wanted}
            for key, wanted in (
                ("status", self.status),
                ("priority", self.priority),
                ("direction", self.direction),
            )
        )


@strawberry.type(description="A committed change to a referral your organization is party to.")
class ReferralEvent:
    type: str = strawberry.field(
        description="What happened, past tense: ReferralCreated, ReferralAccepted, "
        "ReferralStarted, SupporterAssigned, ReferralEscalated, ReferralOverdue, ..."
    )
    event_id: strawberry.ID = strawberry.field(description="Stable per event: deduplicate on it.")
    cursor: str = strawberry.field(
        description="This event's place in commit order: subscribe `after` it to resume."
    )
    referral_id: strawberry.ID
    status: ReferralStatus = strawberry.field(description="The status the change left.")
    version: int = strawberry.field(description="The referral's version after the change.")
    level: int | None = strawberry.field(
        description="ReferralOverdue: 1 at the first-contact target, 2 at twice it."
    )
    occurred_at: datetime
    view: strawberry.Private[ReferralView]

    @strawberry.field(
        description="The referral now, as you may see it now (a redacted stub without consent)."
    )
    def referral(self) -> Referral:
        return Referral.from_view(self.view)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes to your organization's referrals as they commit. With `after` (an "
        "event's `cursor`), first the events since that one, in commit order, then live ones: "
        "none missed, none twice. A cursor past the retention window (outbox rows are kept "
        "PEERBRIDGE_OUTBOX_RETENTION_DAYS days) fails with EVENTS_EXPIRED."
    )
    async def referral_events(
        self,
        info: Info,
        filter: ReferralEventFilterInput | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[ReferralEvent, None]:
        context = info.context
        resume_from = None if after is None else decode_cursor(after)
        await context.renew()
        principal = context.principal
        referrals.check_may_follow(principal)
        fanout: OutboxFanOut = context.request.app.state.events
        wanted = filter or ReferralEventFilterInput()
        async with fanout.follow(
            principal.organization_id, wanted.matches, resume_from
        ) as events:
            async for published in events:
                await context.renew()
                try:
                    view = await context.loaders.referrals.load(published.event.aggregate_id)
                except (Forbidden, NotFound):
                    continue  # not (or no longer) between the subscriber and another party
                yield _event(published, view)


def _event(published: PublishedEvent, view: ReferralView) -> ReferralEvent:
    event = published.event
    return ReferralEvent(
        type=event.event_type,
        event_id=strawberry.ID(str(published.event_id)),
        cursor=encode_cursor(published.sequenced),
        referral_id=to_id(event.aggregate_id),
        status=ReferralStatus(event.payload["status"]),
        version=int(event.payload["version"]),
        level=_level(event.payload.get("level")),
        occurred_at=published.occurred_at,
        view=view,
    )


def _level(value: object) -> int | None:
    return value if isinstance(value, int) else None
