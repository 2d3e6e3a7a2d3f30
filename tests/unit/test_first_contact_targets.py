"""First-contact targets: working days, due times and escalation levels (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.domain.errors import Invalid
from api.domain.referrals import Priority
from api.domain.timeliness import (
    DEFAULT_TARGETS,
    FirstContactTimer,
    Target,
    add_working_days,
    target_for,
)

FRIDAY_10 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SATURDAY_10 = FRIDAY_10 + timedelta(days=1)


def test_working_days_skip_weekends_and_keep_the_time_of_day() -> None:
    assert add_working_days(FRIDAY_10, 1) == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert add_working_days(SATURDAY_10, 1) == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    # Ten working days from a weekday are two calendar weeks.
    assert add_working_days(FRIDAY_10, 10) == FRIDAY_10 + timedelta(days=14)


def test_the_defaults_are_one_hour_four_hours_a_day_and_ten_working_days() -> None:
    assert DEFAULT_TARGETS == {
        Priority.STAT: Target(minutes=60),
        Priority.ASAP: Target(minutes=240),
        Priority.URGENT: Target(minutes=1440),
        Priority.ROUTINE: Target(working_days=10),
    }
    assert target_for({Priority.STAT: Target(minutes=15)}, Priority.STAT) == Target(minutes=15)
    assert target_for({}, Priority.URGENT) == Target(minutes=1440)


def test_a_timer_escalates_at_its_target_then_at_twice_it_then_never_again() -> None:
    timer = FirstContactTimer.start(FRIDAY_10, Target(minutes=60))
    assert timer.next_at == FRIDAY_10 + timedelta(hours=1)
    once = timer.escalated()
    assert (once.level, once.next_at) == (1, FRIDAY_10 + timedelta(hours=2))
    twice = once.escalated()
    assert (twice.level, twice.next_at) == (2, None)
    routine = FirstContactTimer.start(FRIDAY_10, Target(working_days=10))
    assert routine.escalate_at == FRIDAY_10 + timedelta(days=28)


@pytest.mark.parametrize(
    ("minutes", "working_days", "field"),
    [
        (None, None, ""),
        (5, 1, ""),
        (0, None, "minutes"),
        (None, 0, "workingDays"),
        (None, 261, "workingDays"),
        (10**9, None, "minutes"),
    ],
)
def test_a_target_is_exactly_one_positive_bounded_amount(
    minutes: int | None, working_days: int | None, field: str
) -> None:
    with pytest.raises(Invalid) as refused:
        Target(minutes, working_days)
    assert refused.value.details[0].field == field
