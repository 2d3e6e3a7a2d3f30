"""Keyset pagination: opaque cursors over (updated_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from api.domain.errors import Invalid

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True)
class Keyset:
    """The position of a row in (updated_at DESC, id DESC) order."""

    updated_at: datetime
    id: UUID

    def encode(self) -> str:
        raw = f"{self.updated_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Keyset:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            stamp, ident = base64.urlsafe_b64decode(padded).decode().split("|")
            return cls(datetime.fromisoformat(stamp), UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError) as error:
            raise Invalid("the cursor is not one this API issued", field="after") from error


@dataclass(frozen=True)
class PageRequest:
    first: int = DEFAULT_PAGE_SIZE
    after: Keyset | None = None

    @classmethod
    def of(cls, first: int | None, after: str | None) -> PageRequest:
        size = DEFAULT_PAGE_SIZE if first is None else first
        if not 0 < size <= MAX_PAGE_SIZE:
            raise Invalid(f"must be between 1 and {MAX_PAGE_SIZE}", field="first")
        return cls(size, Keyset.decode(after) if after else None)


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
    cursor = keyset(items[-1]).encode() if items else None
    return Page(items, cursor, has_next)
