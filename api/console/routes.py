"""The console's addresses. Ids only in URLs: never a name, an e-mail address or other PHI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api.console import (
    live_updates,
    patient_page,
    referral_actions,
    referral_lists,
    referral_page,
    sign_in,
    single_sign_on,
    supervision,
)
from api.settings import Settings

_ACTIONS: dict[str, Callable[[Request], Awaitable[Response]]] = {
    "accept": referral_actions.accept,
    "reject": referral_actions.reject,
    "start": referral_actions.start,
    "complete": referral_actions.complete,
    "fail": referral_actions.fail,
    "assign": referral_actions.assign,
    "escalate": referral_actions.escalate,
    "handoff": referral_actions.handoff,
    "revoke": referral_actions.revoke,
    "session": referral_actions.schedule_session,
    "attendance": referral_actions.attendance,
    "measure": referral_actions.measure,
}


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/console", sign_in.home, methods=["GET"]),
        Route("/console/", sign_in.home, methods=["GET"]),
        Route("/console/login", sign_in.login_page, methods=["GET"]),
        Route("/console/login", sign_in.login, methods=["POST"]),
        Route("/console/logout", sign_in.logout, methods=["POST"]),
        Route("/console/sso/start", single_sign_on.start, methods=["GET"]),
        Route("/console/sso/callback", single_sign_on.callback, methods=["GET"]),
        Route("/console/sso/{provider}/start", single_sign_on.start, methods=["GET"]),
        Route("/console/sso/{provider}/callback", single_sign_on.callback, methods=["GET"]),
        Route("/console/inbox", referral_lists.inbox, methods=["GET"]),
        Route("/console/caseload", referral_lists.caseload, methods=["GET"]),
        Route("/console/sent", referral_lists.sent, methods=["GET"]),
        Route(live_updates.PATH, live_updates.events, methods=["GET"]),
        Route("/console/supervision", supervision.supervision, methods=["GET"]),
        Route("/console/referrals/{referral_id}", referral_page.referral_page, methods=["GET"]),
        Route("/console/patients/{patient_id}", patient_page.patient_page, methods=["GET"]),
        Route(
            "/console/patients/{patient_id}/consents",
            patient_page.record_consent,
            methods=["POST"],
        ),
        Route(
            "/console/patients/{patient_id}/consents/{consent_id}/revoke",
            patient_page.revoke_consent,
            methods=["POST"],
        ),
        Route("/console/consent-forms/{form_id}", patient_page.signed_form, methods=["GET"]),
        *(
            Route(f"/console/referrals/{{referral_id}}/{name}", action, methods=["POST"])
            for name, action in _ACTIONS.items()
        ),
    ]
