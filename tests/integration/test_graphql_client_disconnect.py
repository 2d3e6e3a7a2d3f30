"""A client that goes away before its GraphQL body arrives (a load generator stopping, a
closed tab) is not an application error: nothing is answered and nothing is logged as one."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from starlette.applications import Starlette


async def test_a_client_gone_before_its_body_is_not_an_error(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.WARNING):
        await app(scope, receive, send)
    assert [m for m in sent if m["type"] == "http.response.start" and m["status"] >= 500] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
