"""First-contact targets: the organization's per-priority time to accept a referral."""

from __future__ import annotations

import strawberry

from api.domain.errors import Invalid
from api.domain.referrals import Priority
from api.domain.timeliness import Target
from api.schema.context import Info
from api.services import timeliness


@strawberry.type(
    description="How long a referral of this priority may wait for its performer to accept it: "
    "`minutes`, or `workingDays` (Monday to Friday, UTC, no holidays, same time of day). A "
    "referral still requested then raises ReferralOverdue (level 1), and again at twice it "
    "(level 2)."
)
class FirstContactTarget:
    priority: Priority
    minutes: int | None
    working_days: int | None


@strawberry.input(
    description="A target for one priority: exactly one of the two, or neither "
    "to go back to the default."
)
class FirstContactTargetInput:
    priority: Priority
    minutes: int | None = None
    working_days: int | None = None


def _targets(targets: dict[Priority, Target]) -> list[FirstContactTarget]:
    return [
        FirstContactTarget(priority=p, minutes=t.minutes, working_days=t.working_days)
        for p, t in targets.items()
    ]


def _target(given: FirstContactTargetInput, index: int) -> Target | None:
    if given.minutes is None and given.working_days is None:
        return None
    try:
        return Target(given.minutes, given.working_days)
    except Invalid as error:
        field = error.details[0].field
        raise Invalid(
            error.details[0].message,
            field=f"targets[{index}]" + (f".{field}" if field else ""),
        ) from None


async def first_contact_targets(info: Info) -> list[FirstContactTarget]:
    return _targets(
        await timeliness.first_contact_targets(info.context.unit_of_work(), info.context.principal)
    )


@strawberry.type
class TimelinessMutations:
    @strawberry.mutation(
        description="Set your organization's first-contact targets (scope Organization.u) for "
        "the referrals it receives from now on; answers all of them, defaults included."
    )
    async def set_first_contact_targets(
        self, info: Info, targets: list[FirstContactTargetInput]
    ) -> list[FirstContactTarget]:
        if len({t.priority for t in targets}) != len(targets):
            raise Invalid("each priority once", field="targets")
        wanted = {t.priority: _target(t, index) for index, t in enumerate(targets)}
        return _targets(
            await timeliness.set_first_contact_targets(
                info.context.unit_of_work(), info.context.principal, wanted
            )
        )
