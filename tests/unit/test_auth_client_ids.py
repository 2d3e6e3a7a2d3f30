"""Generated client ids are safe to pass on a command line."""

from __future__ import annotations

import pytest

from api.auth.clients import new_client_id


def test_a_generated_client_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # token_urlsafe draws from A-Z a-z 0-9 - _: one id in 64 would start with '-'.
    drawn = iter(["-looks-like-an-option", "--also", "fine-id"])
    monkeypatch.setattr("api.auth.clients.secrets.token_urlsafe", lambda _n: next(drawn))
    assert new_client_id() == "fine-id"
