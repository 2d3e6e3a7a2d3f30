"""The background loops' one shape: a round, then a wait, until cancelled.

The event schedule, housekeeping, the audit trail's upkeep and the delivery worker run this way
in `serve` (app lifespan parts, `running`) and in `peerbridge worker`. A failed round is logged
by its exception class only (a message may carry SQL or patient data) and retried after the
interval. Being cancelled stops the loop, whatever the cancelled round ran into: a stopped task
that logged the failure and slept on would hold up the app's shutdown by its interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Protocol

_log = logging.getLogger(__name__)
_STOP_WAIT_S = 3.0


@dataclass(frozen=True)
class Periodic:
    """`work` (a round) every `interval_s` seconds until cancelled.

    `first_now`: the first round at start, else one interval after it. A round that answers
    True found work and more may wait: the next one follows at once. `wait` replaces the
    sleep between rounds (say, until a NOTIFY or the interval, whichever comes first); after
    a failed round the loop always sleeps the interval.
    """

    name: str
    interval_s: float
    work: Callable[[], Awaitable[bool | None]]
    first_now: bool = True
    wait: Callable[[], Awaitable[None]] | None = None

    async def run(self) -> None:
        if not self.first_now:
            await asyncio.sleep(self.interval_s)
        while True:
            try:
                found = await self.work()
                if _stopping():
                    # A round that swallowed its cancellation (a library that caught it and
                    # returned) must not go on to wait an interval: that is the shutdown's time.
                    raise asyncio.CancelledError
                if not found:
                    await (asyncio.sleep(self.interval_s) if self.wait is None else self.wait())
            except Exception as error:  # the loop outlives any one round; the next picks up
                if _stopping():
                    raise  # being stopped: whatever the cancelled round ran into, stop
                _log.warning("%s failed (%s); retrying", self.name, type(error).__name__)
                await asyncio.sleep(self.interval_s)


def _stopping() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Loop(Protocol):
    """Runs until cancelled (a `Periodic`, or a loop with set-up around one)."""

    @property
    def name(self) -> str: ...
    async def run(self) -> None: ...


@asynccontextmanager
async def running(*loops: Loop) -> AsyncIterator[None]:
    """The loops run as tasks while inside (an app lifespan part); on the way out they are
    cancelled and awaited."""
    tasks = [asyncio.create_task(loop.run(), name=loop.name) for loop in loops]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        stopped, stuck = await asyncio.wait(tasks, timeout=_STOP_WAIT_S)
        for task in stuck:
            # Never hold up the shutdown for a loop that ignores its cancellation: say which.
            _log.warning("%s did not stop within %g s; left behind", task.get_name(), _STOP_WAIT_S)
        for task in tasks:
            if task in stopped:
                with suppress(asyncio.CancelledError):
                    await task
