"""Keyset cursors remember the order of their walk (api.services.pagination)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from api.domain.errors import Invalid
from api.services.pagination import Keyset, Order, PageRequest, page_from_rows

STAMP = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("order", list(Order))
def test_a_cursor_decodes_to_the_position_and_order_it_encodes(order: Order) -> None:
    keyset = Keyset(STAMP, uuid4(), order)
    assert Keyset.decode(keyset.encode()) == keyset


def test_newest_first_cursors_keep_their_earlier_form() -> None:
    keyset = Keyset(STAMP, uuid4())
    assert Keyset.decode(keyset.encode()).order is Order.NEWEST_CHANGE_FIRST
    raw = base64.urlsafe_b64decode(keyset.encode() + "==").decode()
    assert raw == f"{STAMP.isoformat()}|{keyset.id}"


def test_a_cursor_is_refused_in_the_other_order() -> None:
    oldest = Keyset(STAMP, uuid4(), Order.OLDEST_CHANGE_FIRST).encode()
    assert PageRequest.of(2, oldest, Order.OLDEST_CHANGE_FIRST).after is not None
    with pytest.raises(Invalid):
        PageRequest.of(2, oldest)


def test_a_page_cursor_carries_the_order_of_the_request() -> None:
    rows = [(STAMP, uuid4()) for _ in range(3)]
    request = PageRequest(2, None, Order.OLDEST_CHANGE_FIRST)
    page = page_from_rows(rows, request, lambda row: Keyset(row[0], row[1]))
    assert page.has_next_page and page.end_cursor is not None
    assert Keyset.decode(page.end_cursor) == Keyset(STAMP, rows[1][1], Order.OLDEST_CHANGE_FIRST)


def test_an_unknown_order_mark_is_not_a_cursor() -> None:
    forged = base64.urlsafe_b64encode(f"{STAMP.isoformat()}|{uuid4()}|z".encode())
    with pytest.raises(Invalid):
        Keyset.decode(forged.decode())
