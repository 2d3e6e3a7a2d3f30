"""Liveness and readiness probes for load balancers and orchestrators (no auth, no data)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from api.db.pool import readiness_problem
from api.settings import Settings

# Below Kubernetes' habit of 1-5 s probe timeouts, so a slow database reads as "not ready"
# rather than a probe timeout with no reason attached.
_PROBE_TIMEOUT_S = 2.0
_NO_STORE = {"cache-control": "no-store"}


async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving HTTP; says nothing about the database."""
    return JSONResponse({"status": "ok"}, headers=_NO_STORE)


async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and no migration is pending, else 503 with the reason."""
    problem = await readiness_problem(request.app.state.pool, _PROBE_TIMEOUT_S)
    if problem is None:
        return JSONResponse({"status": "ready"}, headers=_NO_STORE)
    return JSONResponse({"status": "not_ready", "reason": problem}, 503, headers=_NO_STORE)


def routes(settings: Settings) -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
