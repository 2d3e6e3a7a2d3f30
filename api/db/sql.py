"""A tiny builder for dynamic WHERE clauses: values only ever travel as `$n` parameters."""

from __future__ import annotations

from typing import Any


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
