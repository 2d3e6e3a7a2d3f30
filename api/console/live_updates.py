"""Live updates of the referral lists: Server-Sent Events from the outbox fan-out (the one the
GraphQL `referralEvents` subscription listens on), and a small script of the package's own
that offers to refresh the list. Without JavaScript the list is as fresh as its last load.

Each event names only the referral that changed (its id, nothing of the patient), and only
after the services decided, at that moment and as the signed-in person, that they are party to
it (`referrals.followed`: the policy's tenancy rule, a supporter's caseload, as for every
read). Nothing of the referral is disclosed, so nothing is audited until the person refreshes
the list or opens the referral. The session is checked again with every event, without
counting as the person's activity (an open tab does not hold a session open past its idle
timeout), and the stream ends when it has ended.

Events: `ready` (listening), `changed` ({"referral": id}), `interrupted` (the server dropped
the stream: the page may be stale), `signed-out`. A comment every 15 s keeps proxies from
closing a quiet stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from api.console.web import (
    SECURITY_HEADERS,
    Staff,
    login_policy,
    session_cookie,
    source_ip,
    staff_page,
    unit_of_work,
)
from api.domain.errors import EventsDropped, Retryable
from api.domain.events import PublishedEvent
from api.domain.staff import StaffRole
from api.events.fanout import OutboxFanOut
from api.services import referrals, users
from api.settings import Settings

PATH = "/console/events"
SCRIPT = "/static/console/live-updates.js"
_HEARTBEAT_S = 15.0
_RETRY_MS = 5000  # how long the browser waits before it reconnects a closed stream


def _is_referral_change(published: PublishedEvent) -> bool:
    return published.event.aggregate_type == "Referral"


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@staff_page(StaffRole.COORDINATOR, StaffRole.SUPPORTER, StaffRole.CLINIC)
async def events(staff: Staff) -> Response:
    referrals.check_may_follow(staff.principal)
    settings: Settings = staff.request.app.state.settings
    token = staff.request.cookies.get(session_cookie(settings), "")
    return StreamingResponse(
        _changes(staff, token),
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, "x-accel-buffering": "no"},  # nginx: do not buffer
    )


async def _changes(staff: Staff, token: str) -> AsyncIterator[str]:
    request = staff.request
    settings: Settings = request.app.state.settings
    fanout: OutboxFanOut = request.app.state.events
    policy = login_policy(settings)
    with fanout.subscribe(staff.principal.organization_id, _is_referral_change) as subscriber:
        yield f"retry: {_RETRY_MS}\n" + _event("ready", {})
        while True:
            try:
                published = await asyncio.wait_for(anext(subscriber), _HEARTBEAT_S)
            except TimeoutError:
                yield ": still listening\n\n"
                continue
            except EventsDropped:
                yield _event("interrupted", {})
                return
            try:
                session = await users.resume_session(
                    unit_of_work(request), token, policy, activity=False
                )
                if session is None:
                    yield _event("signed-out", {})
                    return
                principal = users.principal_of(session.user, source_ip(request))
                referral_id = published.event.aggregate_id
                told = await referrals.followed(unit_of_work(request), principal, referral_id)
            except Retryable:  # the database is away: the page may be stale from here on
                yield _event("interrupted", {})
                return
            if told:
                yield _event("changed", {"referral": str(referral_id)})
