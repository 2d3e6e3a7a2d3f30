"""OAuth error responses for the doors (RFC 6750 3) and the token endpoint (RFC 6749 5.2)."""

from __future__ import annotations

import json

from api.auth.errors import (
    forbidden_response,
    invalid_client,
    invalid_token_response,
    unauthenticated_response,
)
from api.auth.middleware import _bearer
from api.domain.errors import Forbidden
from api.observability.tracing import request_trace_id


def test_insufficient_scope_names_the_scope_in_the_challenge() -> None:
    response = forbidden_response(Forbidden("needs more", needed_scope="user/Task.u"))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="PeerBridge", error="insufficient_scope", scope="user/Task.u"'
    )
    assert json.loads(response.body)["error"] == "insufficient_scope"


def test_a_tenancy_refusal_is_a_plain_403() -> None:
    response = forbidden_response(Forbidden("belongs to another organization"))
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers
    assert json.loads(response.body)["error"] == "forbidden"


def test_invalid_token_challenge_cannot_be_broken_by_its_description() -> None:
    response = invalid_token_response('bad "quote" \\ and\nnewline')
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="PeerBridge", error="invalid_token"')
    assert challenge.count('"') == 6 and "\n" not in challenge


def test_no_token_is_a_bare_bearer_challenge() -> None:
    response = unauthenticated_response()
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="PeerBridge"'


def test_invalid_client_over_basic_auth_is_401_with_a_basic_challenge() -> None:
    basic = invalid_client("no", basic=True).response()
    assertion = invalid_client("no").response()
    assert basic.status_code == 401
    assert basic.headers["www-authenticate"] == 'Basic realm="PeerBridge"'
    assert assertion.status_code == 400 and "www-authenticate" not in assertion.headers
    assert basic.headers["cache-control"] == "no-store"


def test_bearer_credentials_are_read_case_insensitively_and_others_ignored() -> None:
    def scope(value: bytes) -> dict[str, object]:
        return {"headers": [(b"authorization", value)]}

    assert _bearer(scope(b"Bearer abc")) == "abc"
    assert _bearer(scope(b"bearer abc")) == "abc"
    assert _bearer(scope(b"Bearer ")) == ""  # present but empty: refused, not anonymous
    assert _bearer(scope(b"Basic dXNlcjpwdw==")) is None
    assert _bearer({"headers": []}) is None


def test_the_trace_id_comes_from_a_valid_traceparent_only() -> None:
    good = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    trace = "0af7651916cd43dd8448eb211c80319c"
    assert request_trace_id({"headers": [(b"traceparent", good)]}) == trace
    assert request_trace_id({"headers": [(b"traceparent", b"00-xyz-1-01")]}) is None
