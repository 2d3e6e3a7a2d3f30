"""The console's addresses. Ids only in URLs: never a name, an e-mail address or other PHI."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from api.console import referral_lists, sign_in
from api.settings import Settings


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/console", sign_in.home, methods=["GET"]),
        Route("/console/", sign_in.home, methods=["GET"]),
        Route("/console/login", sign_in.login_page, methods=["GET"]),
        Route("/console/login", sign_in.login, methods=["POST"]),
        Route("/console/logout", sign_in.logout, methods=["POST"]),
        Route("/console/inbox", referral_lists.inbox, methods=["GET"]),
        Route("/console/caseload", referral_lists.caseload, methods=["GET"]),
        Route("/console/sent", referral_lists.sent, methods=["GET"]),
    ]
