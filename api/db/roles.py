"""The service role: what the running PeerBridge may do to the database, granted by the owner.

In production two roles share the database: the owner, which created the tables (migrations
run as it), and the service role the API connects as. The service role may read and write the
tables it works with, only read `schema_migrations`, and only INSERT and SELECT the audit trail
and its checkpoints. Not owning any table, it cannot ALTER one (so it cannot disable the
append-only triggers), and without the TRUNCATE privilege it cannot empty one.

`grant_service_role` is idempotent: it revokes everything first and grants exactly this on
every table in the schema, so it is re-run after each migration (`migrate` does when
PEERBRIDGE_SERVICE_ROLE is set) to cover tables new migrations created. Partitions (the audit
trail's months) get nothing: the service role reaches them only through their parent, and may
only ask the owner's function to create the coming months.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

APPEND_ONLY_TABLES = frozenset({"audit_events", "audit_checkpoints"})
READ_ONLY_TABLES = frozenset({"schema_migrations"})
_READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
# Creates the audit trail's coming month partitions as the owner (0013_audit_partitions.sql).
_CREATE_PARTITIONS = "audit_events_create_partitions(integer)"


class RoleRefused(Exception):
    """The role cannot serve as the service role; the message says why (safe to print)."""


@dataclass(frozen=True)
class Grant:
    table: str
    privileges: str


def privileges_for(table: str) -> str:
    if table in APPEND_ONLY_TABLES:
        return "SELECT, INSERT"
    if table in READ_ONLY_TABLES:
        return "SELECT"
    return _READ_WRITE


async def grant_service_role(conn: asyncpg.Connection, role: str) -> list[Grant]:
    """Give `role` exactly the service's rights on the current database; run as the owner."""
    await _check_role(conn, role)
    quoted_role = await conn.fetchval("SELECT quote_ident($1)", role)
    tables = await conn.fetch(
        """SELECT c.relname AS name, quote_ident(c.relname) AS quoted, c.relispartition
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           ORDER BY c.relname"""
    )
    grants = []
    async with conn.transaction():
        database = await conn.fetchval("SELECT quote_ident(current_database())")
        schema = await conn.fetchval("SELECT quote_ident(current_schema())")
        await conn.execute(f"GRANT CONNECT ON DATABASE {database} TO {quoted_role}")
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quoted_role}")
        for table in tables:
            await conn.execute(f"REVOKE ALL ON {table['quoted']} FROM {quoted_role}")
            if table["relispartition"]:
                grants.append(Grant(table["name"], "none (reached through its parent)"))
                continue
            privileges = privileges_for(table["name"])
            await conn.execute(f"GRANT {privileges} ON {table['quoted']} TO {quoted_role}")
            grants.append(Grant(table["name"], privileges))
        # Sequences the service draws from itself (nextval in SQL, e.g. the outbox positions);
        # identity columns need no grant of their own.
        sequences = await conn.fetch(
            """SELECT quote_ident(c.relname) AS quoted
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = current_schema() AND c.relkind = 'S'
                 AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                                 AND d.deptype = 'i')"""
        )
        for sequence in sequences:
            await conn.execute(f"REVOKE ALL ON SEQUENCE {sequence['quoted']} FROM {quoted_role}")
            await conn.execute(f"GRANT USAGE ON SEQUENCE {sequence['quoted']} TO {quoted_role}")
        if await conn.fetchval(f"SELECT to_regprocedure('{_CREATE_PARTITIONS}')") is not None:
            await conn.execute(f"GRANT EXECUTE ON FUNCTION {_CREATE_PARTITIONS} TO {quoted_role}")
    return grants


async def _check_role(conn: asyncpg.Connection, role: str) -> None:
    found = await conn.fetchrow(
        """SELECT r.rolsuper, r.rolbypassrls,
                  r.rolname = current_user AS is_owner,
                  pg_has_role(r.oid, current_user, 'MEMBER') AS in_owner_role,
                  EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                          WHERE c.relowner = r.oid AND n.nspname = current_schema()) AS owns
           FROM pg_roles r WHERE r.rolname = $1""",
        role,
    )
    if found is None:
        raise RoleRefused(f"role {role!r} does not exist: create it first (deploy/roles.sql)")
    if found["rolsuper"]:
        raise RoleRefused(f"role {role!r} is a superuser: grants and triggers do not bind it")
    if found["is_owner"] or found["in_owner_role"] or found["owns"]:
        raise RoleRefused(
            f"role {role!r} is (or is a member of) the role that owns the tables: it could "
            "alter them and disable the audit trail's triggers; use a separate role"
        )
