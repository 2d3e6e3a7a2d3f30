"""The background loops' one shape (api/periodic.py): a failed round is logged by its class and
retried, a round that found work is followed at once, and a cancelled loop stops whatever the
cancelled round ran into."""

from __future__ import annotations

import asyncio
import logging

import pytest

from api.periodic import Periodic, running


class _Rounds:
    """Rounds that fail with a message that must not be logged, then report work, then none."""

    def __init__(self, answers: list[bool | Exception]) -> None:
        self.answers = answers
        self.rounds = 0
        self.waits = 0
        self.done = asyncio.Event()

    async def work(self) -> bool:
        self.rounds += 1
        if self.rounds >= len(self.answers):
            self.done.set()
            await asyncio.Event().wait()  # until cancelled
        answer = self.answers[self.rounds - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def wait(self) -> None:
        self.waits += 1


async def test_a_failed_round_is_logged_by_class_and_retried_and_work_is_followed_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rounds = _Rounds([ValueError("patient Jane Doe"), True, True, False, True])
    loop = Periodic("test loop", 0, rounds.work, wait=rounds.wait)
    with caplog.at_level(logging.WARNING, logger="api.periodic"):
        async with running(loop):
            await rounds.done.wait()
    assert rounds.rounds == 5
    # Only the round that found nothing waits; after the failure the loop slept its interval.
    assert rounds.waits == 1
    assert [r.getMessage() for r in caplog.records] == ["test loop failed (ValueError); retrying"]
    assert "Jane" not in caplog.text


async def test_a_cancelled_loop_stops_whatever_the_cancelled_round_ran_into() -> None:
    started = asyncio.Event()

    async def half_way() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            # As a statement cut off mid-exchange does: the cancellation surfaces as an error.
            raise RuntimeError("another operation is in progress") from None

    # An hour between rounds: a loop that logged the failure and slept on would hang here.
    task = asyncio.create_task(Periodic("test loop", 3600, half_way).run())
    await started.wait()
    task.cancel()
    with pytest.raises(RuntimeError):
        await task


async def test_a_round_that_swallows_its_cancellation_does_not_wait_an_interval() -> None:
    started = asyncio.Event()

    async def swallowing() -> bool:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return False  # as a library that catches the cancellation and returns would
        return True

    task = asyncio.create_task(Periodic("test loop", 3600, swallowing).run())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)


async def test_shutdown_is_not_held_up_by_a_loop_that_ignores_its_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()

    class Stubborn:
        """Ignores its cancellation until the test lets it go."""

        name = "stubborn loop"

        async def run(self) -> None:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue

    with caplog.at_level(logging.WARNING, logger="api.periodic"):
        async with running(Stubborn()):
            await asyncio.sleep(0)
    assert "stubborn loop did not stop" in caplog.text
    release.set()
