"""Keyset pagination: opaque cursors over (updated_at, id), newest change first by default.

Oldest change first is the order for polling: a record that changes while a client walks the
pages gets a later `updated_at`, so it moves behind the cursor and is met again on a later page
instead of being skipped. A cursor remembers its order and is refused in the other one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar
from uuid import UUID

from api.domain.errors import Invalid

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

T = TypeVar("T")
U = TypeVar("U")


class Order(StrEnum):
    """The order of a keyset walk over (updated_at, id)."""

    NEWEST_CHANGE_FIRST = "newest_change_first"
    OLDEST_CHANGE_FIRST = "oldest_change_first"


_OLDEST_FIRST_MARK = "a"  # the third cursor part of an oldest-first cursor


@dataclass(frozen=True)
class Keyset:
    """The position of a row in (updated_at, id) order, descending unless oldest first."""

    updated_at: datetime
    id: UUID
    order: Order = Order.NEWEST_CHANGE_FIRST

    def encode(self) -> str:
        raw = f"{self.updated_at.isoformat()}|{self.id}"
        if self.order is Order.OLDEST_CHANGE_FIRST:
            raw += f"|{_OLDEST_FIRST_MARK}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Keyset:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            stamp, ident, *mark = base64.urlsafe_b64decode(padded).decode().split("|")
            if mark not in ([], [_OLDEST_FIRST_MARK]):
                raise ValueError("unknown cursor order")
            order = Order.OLDEST_CHANGE_FIRST if mark else Order.NEWEST_CHANGE_FIRST
            return cls(datetime.fromisoformat(stamp), UUID(ident), order)
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise Invalid("the cursor is not one this API issued", field="after") from error


@dataclass(frozen=True)
class PageRequest:
    first: int = DEFAULT_PAGE_SIZE
    after: Keyset | None = None
    order: Order = Order.NEWEST_CHANGE_FIRST

    @classmethod
    def of(
        cls, first: int | None, after: str | None, order: Order = Order.NEWEST_CHANGE_FIRST
    ) -> PageRequest:
        size = DEFAULT_PAGE_SIZE if first is None else first
        if not 0 < size <= MAX_PAGE_SIZE:
            raise Invalid(f"must be between 1 and {MAX_PAGE_SIZE}", field="first")
        keyset = Keyset.decode(after) if after else None
        if keyset is not None and keyset.order is not order:
            raise Invalid("the cursor belongs to a walk in the other order", field="after")
        return cls(size, keyset, order)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    end_cursor: str | None
    has_next_page: bool

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        return Page(
            tuple(convert(item) for item in self.items), self.end_cursor, self.has_next_page
        )


def page_from_rows(
    rows: Sequence[T], request: PageRequest, keyset: Callable[[T], Keyset]
) -> Page[T]:
    """Repositories fetch `first + 1` rows; the extra one only tells that a next page exists."""
    items = tuple(rows[: request.first])
    has_next = len(rows) > request.first
    cursor = replace(keyset(items[-1]), order=request.order).encode() if items else None
    return Page(items, cursor, has_next)
