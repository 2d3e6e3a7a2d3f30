"""First-contact targets and referral timers (migration 0017; rules in api/domain/timeliness.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import asyncpg

from api.domain.referrals import Priority
from api.domain.timeliness import FirstContactTimer, Target


class PostgresTimerRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def targets_of(self, organization_id: UUID) -> dict[Priority, Target]:
        """The organization's own targets (priorities it has not set are absent)."""
        rows = await self._db.fetch(
            "SELECT priority, minutes, working_days FROM first_contact_targets "
            "WHERE organization_id = $1",
            organization_id,
        )
        return {
            Priority(row["priority"]): Target(row["minutes"], row["working_days"]) for row in rows
        }

    async def set_targets(
        self, organization_id: UUID, targets: Mapping[Priority, Target | None]
    ) -> None:
        """Set (or, with None, remove) the organization's targets for these priorities."""
        for priority, target in targets.items():
            if target is None:
                await self._db.execute(
                    "DELETE FROM first_contact_targets "
                    "WHERE organization_id = $1 AND priority = $2",
                    organization_id,
                    priority.value,
                )
            else:
                await self._db.execute(
                    "INSERT INTO first_contact_targets "
                    "(organization_id, priority, minutes, working_days) VALUES ($1, $2, $3, $4) "
                    "ON CONFLICT (organization_id, priority) DO UPDATE SET "
                    "minutes = EXCLUDED.minutes, working_days = EXCLUDED.working_days, "
                    "updated_at = now()",
                    organization_id,
                    priority.value,
                    target.minutes,
                    target.working_days,
                )

    async def start(self, referral_id: UUID, timer: FirstContactTimer) -> None:
        await self._db.execute(
            "INSERT INTO referral_timers (referral_id, due_at, escalate_at, level, next_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            referral_id,
            timer.due_at,
            timer.escalate_at,
            timer.level,
            timer.next_at,
        )

    async def claim_due(self, now: datetime, limit: int) -> list[tuple[UUID, FirstContactTimer]]:
        """Timers whose next escalation is due, locked until the transaction ends; timers
        another transaction holds are skipped (it is escalating them)."""
        rows = await self._db.fetch(
            "SELECT referral_id, due_at, escalate_at, level FROM referral_timers "
            "WHERE next_at <= $1 ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [
            (row["referral_id"], FirstContactTimer(row["due_at"], row["escalate_at"], row["level"]))
            for row in rows
        ]

    async def save(self, referral_id: UUID, timer: FirstContactTimer) -> None:
        await self._db.execute(
            "UPDATE referral_timers SET level = $2, next_at = $3 WHERE referral_id = $1",
            referral_id,
            timer.level,
            timer.next_at,
        )

    async def stop(self, referral_id: UUID) -> None:
        await self._db.execute("DELETE FROM referral_timers WHERE referral_id = $1", referral_id)
