"""A tiny builder for dynamic WHERE clauses: values only ever travel as `$n` parameters."""

from __future__ import annotations

from typing import Any

from api.services.pagination import Keyset, Order


class Where:
    def __init__(self, *params: Any) -> None:
        self.params: list[Any] = list(params)
        self._clauses: list[str] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def add(self, clause: str, *values: Any) -> None:
        """`clause` uses `{}` for each value, e.g. `add("status = ANY({})", statuses)`."""
        self._clauses.append(clause.format(*(self.param(v) for v in values)))

    def sql(self) -> str:
        return " AND ".join(self._clauses) if self._clauses else "TRUE"


def first_per_parent(
    columns: str, table: str, parent: str, where: Where, order: str, limit: int
) -> str:
    """Up to `limit` rows per `parent` value, in `order` within each parent: one statement for
    a whole batch of parents (`where` names them, e.g. `parent = ANY($1::uuid[])`)."""
    return (
        f"SELECT {columns} FROM (SELECT {columns}, row_number() OVER "
        f"(PARTITION BY {parent} ORDER BY {order}) AS position_in_parent "
        f"FROM {table} WHERE {where.sql()}) ranked "
        f"WHERE position_in_parent <= {where.param(limit)} ORDER BY {parent}, {order}"
    )


def keyset_order(order: Order, alias: str = "") -> str:
    """ORDER BY for a keyset walk over (updated_at, id); `alias` qualifies the columns."""
    direction = "ASC" if order is Order.OLDEST_CHANGE_FIRST else "DESC"
    return f"{alias}updated_at {direction}, {alias}id {direction}"


def keyset_after(where: Where, after: Keyset | None, order: Order, alias: str = "") -> None:
    """Rows after the cursor in the walk's order (a row version is compared as a pair)."""
    if after is not None:
        compare = ">" if order is Order.OLDEST_CHANGE_FIRST else "<"
        where.add(
            f"({alias}updated_at, {alias}id) {compare} ({{}}, {{}})", after.updated_at, after.id
        )
