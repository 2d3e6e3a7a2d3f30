"""The `DateTime` scalar: strawberry's own (ISO 8601, same name, description and parsing) plus
one rule — an instant must exist in UTC, where PostgreSQL keeps it. `9999-12-31T23:59:59-14:00`
parses, but falls in the year 10000 in UTC; refused here as invalid input instead of failing
the query that would store or compare it."""

from __future__ import annotations

import dataclasses
import datetime as dt

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition
from strawberry.types.scalar import ScalarDefinition


def _parse_instant(value: object) -> object:
    parsed = DateTimeDefinition.parse_value(value) if DateTimeDefinition.parse_value else value
    if isinstance(parsed, dt.datetime) and parsed.tzinfo is not None:
        try:
            parsed.astimezone(dt.UTC)
        except OverflowError:
            raise StrawberryInputCoercionError(
                "Value cannot represent a DateTime: it falls outside the years 1 to 9999 in UTC."
            ) from None
    return parsed


DATETIME: ScalarDefinition = dataclasses.replace(DateTimeDefinition, parse_value=_parse_instant)
