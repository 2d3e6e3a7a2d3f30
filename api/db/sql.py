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
