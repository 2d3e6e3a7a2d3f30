"""First-contact targets: how long a referral may wait for its performer to accept it.

Each performing organization sets a target per priority (else the defaults below). A referral
still `requested` at its target is overdue (level 1) and escalates again at twice the target
(level 2). A target is a number of minutes, or of working days: Monday to Friday in UTC, no
holidays, keeping the time of day (Friday 10:00 + 1 working day = Monday 10:00; a Saturday or
Sunday start counts from the next Monday at that time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from api.domain.errors import Invalid
from api.domain.events import DomainEvent
from api.domain.referrals import Priority, Referral

_SATURDAY = 5
MAX_MINUTES = 60 * 24 * 366
MAX_WORKING_DAYS = 260
LAST_LEVEL = 2


@dataclass(frozen=True)
class Target:
    """Exactly one of `minutes` and `working_days`."""

    minutes: int | None = None
    working_days: int | None = None

    def __post_init__(self) -> None:
        if (self.minutes is None) == (self.working_days is None):
            raise Invalid("give either minutes or workingDays")
        if self.minutes is not None and not 1 <= self.minutes <= MAX_MINUTES:
            raise Invalid(f"from 1 to {MAX_MINUTES}", field="minutes")
        if self.working_days is not None and not 1 <= self.working_days <= MAX_WORKING_DAYS:
            raise Invalid(f"from 1 to {MAX_WORKING_DAYS}", field="workingDays")

    def after(self, start: datetime, times: int = 1) -> datetime:
        """When `times` targets have passed since `start` (an aware datetime)."""
        if self.minutes is not None:
            return start + timedelta(minutes=self.minutes * times)
        assert self.working_days is not None
        return add_working_days(start, self.working_days * times)


DEFAULT_TARGETS: dict[Priority, Target] = {
    Priority.STAT: Target(minutes=60),
    Priority.ASAP: Target(minutes=4 * 60),
    Priority.URGENT: Target(minutes=24 * 60),
    Priority.ROUTINE: Target(working_days=10),
}


def target_for(own: Mapping[Priority, Target], priority: Priority) -> Target:
    """The organization's own target for `priority`, else the default."""
    return own.get(priority, DEFAULT_TARGETS[priority])


def add_working_days(start: datetime, days: int) -> datetime:
    """`start` moved on `days` working days (Mon–Fri, UTC), keeping its time of day."""
    moment = start
    while days > 0:
        moment += timedelta(days=1)
        if moment.weekday() < _SATURDAY:
            days -= 1
    return moment


@dataclass(frozen=True)
class FirstContactTimer:
    """The due times of one referral's first contact; `level` escalations raised so far."""

    due_at: datetime
    escalate_at: datetime
    level: int = 0

    @classmethod
    def start(cls, created_at: datetime, target: Target) -> FirstContactTimer:
        return cls(target.after(created_at), target.after(created_at, 2))

    def escalated(self) -> FirstContactTimer:
        """This timer after its next escalation was raised."""
        return FirstContactTimer(self.due_at, self.escalate_at, self.level + 1)

    def escalate(self, referral: Referral) -> tuple[FirstContactTimer, DomainEvent]:
        """Raise the next escalation of the referral's first contact: the timer after it and
        the `ReferralOverdue` event that tells both parties (with its level and due time)."""
        escalated = self.escalated()
        return escalated, referral.event(
            "ReferralOverdue", level=escalated.level, dueAt=self.due_at.isoformat()
        )

    @property
    def next_at(self) -> datetime | None:
        """When the next escalation is due; None after the last one."""
        if self.level == 0:
            return self.due_at
        return self.escalate_at if self.level < LAST_LEVEL else None
