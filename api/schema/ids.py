"""Entity ids on the wire are the records' UUIDs (also the federation `@key`)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import strawberry

from api.domain.errors import Invalid


def parse_id(value: strawberry.ID | str, field: str) -> UUID:
    """The UUID an `ID` argument names, or INVALID_INPUT naming the argument."""
    try:
        return UUID(str(value))
    except ValueError:
        raise Invalid("is not a valid id", field=field) from None


def parse_optional_id(value: strawberry.ID | str | None, field: str) -> UUID | None:
    return None if value is None else parse_id(value, field)


def parse_ids(values: Iterable[strawberry.ID | str], field: str) -> tuple[UUID, ...]:
    return tuple(parse_id(value, f"{field}[{index}]") for index, value in enumerate(values))


def to_id(value: UUID) -> strawberry.ID:
    return strawberry.ID(str(value))
