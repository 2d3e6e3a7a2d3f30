"""Aggregate counts for program metrics, computed in one statement."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


class PostgresMetricsRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def program_counts(
        self, program_id: UUID, since: datetime, until: datetime
    ) -> dict[str, int]:
        row = await self._db.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM referrals r WHERE r.program_id = $1
                 AND r.created_at >= $2 AND r.created_at < $3) AS referrals_received,
              (SELECT count(*) FROM referrals r WHERE r.program_id = $1
                 AND r.created_at >= $2 AND r.created_at < $3
                 AND r.status = 'accepted') AS referrals_accepted,
              (SELECT count(*) FROM referrals r WHERE r.program_id = $1
                 AND r.created_at >= $2 AND r.created_at < $3
                 AND r.status = 'completed') AS referrals_completed,
              (SELECT count(*) FROM peer_sessions s WHERE s.program_id = $1
                 AND s.starts_at >= $2 AND s.starts_at < $3) AS sessions_held,
              (SELECT count(*) FROM attendance a JOIN peer_sessions s ON s.id = a.session_id
                 WHERE s.program_id = $1 AND s.starts_at >= $2 AND s.starts_at < $3
                 AND a.status = 'attended') AS attendances,
              (SELECT count(DISTINCT a.patient_id) FROM attendance a
                 JOIN peer_sessions s ON s.id = a.session_id
                 WHERE s.program_id = $1 AND s.starts_at >= $2 AND s.starts_at < $3
                 AND a.status = 'attended') AS distinct_participants
            """,
            program_id,
            since,
            until,
        )
        return {key: int(value) for key, value in row.items()}
