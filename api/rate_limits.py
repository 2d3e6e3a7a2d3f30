"""Per-client rate limits: a token bucket per OAuth client (every authenticated request) and
per source address on the token endpoint. Over the limit, `RateLimited` is raised, which
`RetryLaterMiddleware` answers as 429 with `Retry-After` in the door's shape.

The buckets live in each process: with `serve --workers N` (or R replicas) a client may make
up to N × R times the configured rate in all. That bounds a runaway client without a shared
store (no Redis on a user's machine); set the rate per worker accordingly.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from api.domain.errors import RateLimited
from api.domain.principal import Principal
from api.observability.metrics import RATE_LIMITED
from api.settings import Settings

TOKEN_ENDPOINT = "/oauth/token"
# Distinct keys remembered per process; the least recently seen is forgotten first (its
# bucket would have refilled long ago anyway, unless an attacker rotates keys faster).
_MAX_KEYS = 10_000


class TokenBuckets:
    """`rate` tokens per second refill each key's bucket up to `burst`; a request takes one."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when the request may go ahead, else the seconds until the bucket has a token."""
        now = self._clock()
        tokens, then = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        waited = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            waited = (1 - tokens) / self._rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > _MAX_KEYS:
            self._buckets.popitem(last=False)
        return waited


class RateLimitMiddleware:
    """Below authentication (it keys on the OAuth client of the request's principal)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self._clients = (
            TokenBuckets(settings.rate_limit_client_rps, settings.rate_limit_client_burst)
            if settings.rate_limit_client_rps > 0
            else None
        )
        self._token_endpoint = (
            TokenBuckets(settings.rate_limit_token_rps, settings.rate_limit_token_burst)
            if settings.rate_limit_token_rps > 0
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._check(scope)
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        principal: Principal | None = scope.get("state", {}).get("principal")
        if principal is not None and self._clients is not None:
            _refuse_if_over(self._clients, principal.client_id, "client")
        elif scope["path"] == TOKEN_ENDPOINT and self._token_endpoint is not None:
            client = scope.get("client")
            _refuse_if_over(self._token_endpoint, client[0] if client else "", "token_endpoint")


def _refuse_if_over(buckets: TokenBuckets, key: str, limit: str) -> None:
    wait = buckets.take(key)
    if wait > 0:
        RATE_LIMITED.labels(limit).inc()
        raise RateLimited(
            "too many requests: slow down and retry after the time given",
            retry_after_s=math.ceil(wait),
        )
