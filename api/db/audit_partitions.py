"""The audit trail's month partitions (0013_audit_partitions.sql): list them, create them ahead.

Creating goes through the SECURITY DEFINER function `audit_events_create_partitions`, so the
service role (which may create no table) can keep the coming months in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class AuditPartition:
    name: str
    since: datetime | None  # None for the DEFAULT partition
    until: datetime | None
    estimated_rows: int  # from the planner's statistics (-1: never analysed)
    total_bytes: int  # table and its indexes


async def list_partitions(conn: asyncpg.Connection) -> list[AuditPartition]:
    """Every partition attached to audit_events, oldest month first, the DEFAULT last."""
    # A month's bound reads FOR VALUES FROM ('<instant>') TO ('<instant>'); DEFAULT has none.
    rows = await conn.fetch(
        """SELECT c.relname AS name, bound[1]::timestamptz AS since,
                  bound[2]::timestamptz AS until, c.reltuples::bigint AS estimated_rows,
                  pg_total_relation_size(c.oid) AS total_bytes
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
                regexp_match(pg_get_expr(c.relpartbound, c.oid),
                             'FROM \\(''([^'']+)''\\) TO \\(''([^'']+)''\\)') AS bound
           WHERE i.inhparent = 'audit_events'::regclass"""
    )
    partitions = [
        AuditPartition(
            name=row["name"],
            since=row["since"],
            until=row["until"],
            estimated_rows=row["estimated_rows"],
            total_bytes=row["total_bytes"],
        )
        for row in rows
    ]
    return sorted(partitions, key=lambda p: (p.since is None, p.since or datetime.min))


async def create_ahead(conn: asyncpg.Connection, months_ahead: int) -> list[str]:
    """Create the current UTC month's partition and the next `months_ahead`; the names made."""
    rows = await conn.fetch("SELECT audit_events_create_partitions($1) AS name", months_ahead)
    return [row["name"] for row in rows]
