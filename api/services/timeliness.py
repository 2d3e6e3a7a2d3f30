"""First-contact targets and the escalation of referrals nobody accepted in time.

A referral starts its timer when it is opened, from its performer's target for its priority
(api/domain/timeliness.py). The event schedule calls `escalate_due`: a referral still
`requested` at its target raises `ReferralOverdue` (level 1) to both organizations, and again at
twice the target (level 2). Timers live in the database, so a restart loses none; claims skip
timers another process holds, so two processes never raise the same escalation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from uuid import UUID

from api.domain.principal import Principal
from api.domain.referrals import Priority, ReferralStatus
from api.domain.timeliness import Target, target_for
from api.services.filters import ReferralFilter
from api.services.policy import Capability, require, utcnow, within_caseload
from api.services.repositories import UnitOfWork

_CLAIM_BATCH = 100


async def first_contact_targets(uow: UnitOfWork, principal: Principal) -> dict[Priority, Target]:
    """The caller's organization's target per priority (its own, else the default)."""
    require(principal, Capability.READ_ORGANIZATIONS)
    async with uow:
        own = await uow.timers.targets_of(principal.organization_id)
    return {priority: target_for(own, priority) for priority in Priority}


async def set_first_contact_targets(
    uow: UnitOfWork, principal: Principal, targets: Mapping[Priority, Target | None]
) -> dict[Priority, Target]:
    """Set the caller's organization's targets (None: back to the default) for referrals it
    receives from now on; referrals already waiting keep the due times they started with."""
    require(principal, Capability.MANAGE_TIMELINESS)
    async with uow:
        await uow.timers.set_targets(principal.organization_id, targets)
        own = await uow.timers.targets_of(principal.organization_id)
        await uow.commit()
    return {priority: target_for(own, priority) for priority in Priority}


async def overdue_among(
    uow: UnitOfWork, principal: Principal, referral_ids: Collection[UUID]
) -> frozenset[UUID]:
    """Of these referrals of the caller's, those overdue now (the `overdue` search: still
    requested past the first-contact target). Only ids come back: no patient data, no audit."""
    require(principal, Capability.READ_REFERRALS)
    if not referral_ids:
        return frozenset()
    where = within_caseload(principal, ReferralFilter(ids=frozenset(referral_ids), overdue=True))
    async with uow:
        found = await uow.referrals.search(
            principal.organization_id, where, None, len(referral_ids)
        )
    return frozenset(referral.id for referral in found)


async def escalate_due(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Raise every escalation due by `now` (default: the clock); how many were raised."""
    raised = 0
    while True:
        async with uow:
            claimed = await uow.timers.claim_due(now or utcnow(), _CLAIM_BATCH)
            referrals = await uow.referrals.get_many([referral_id for referral_id, _ in claimed])
            for (referral_id, timer), referral in zip(claimed, referrals, strict=True):
                if referral is None or referral.status is not ReferralStatus.REQUESTED:
                    await uow.timers.stop(referral_id)  # accepted, declined or withdrawn
                    continue
                escalated, overdue = timer.escalate(referral)
                await uow.timers.save(referral_id, escalated)
                uow.collect(overdue)
                raised += 1
            await uow.commit()
        if len(claimed) < _CLAIM_BATCH:
            return raised
