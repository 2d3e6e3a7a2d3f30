"""OAuth error responses: token endpoint (RFC 6749 5.2) and bearer-token doors (RFC 6750 3)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from api.domain.errors import Forbidden

# RFC 6749 5.1: token responses and errors must not be cached.
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
_REALM = 'realm="PeerBridge"'


class OAuthError(Exception):
    """An RFC 6749 5.2 error from the token endpoint; `description` is safe to show and log."""

    status_code = 400

    def __init__(self, error: str, description: str, *, status_code: int | None = None,
                 basic_challenge: bool = False) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        if status_code is not None:
            self.status_code = status_code
        self.basic_challenge = basic_challenge

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.basic_challenge:
            # RFC 6749 5.2: a failed Authorization-header login is a 401 naming the scheme.
            headers["www-authenticate"] = f"Basic {_REALM}"
        body = {"error": self.error, "error_description": self.description}
        return JSONResponse(body, self.status_code, headers=headers)


def invalid_request(description: str) -> OAuthError:
    return OAuthError("invalid_request", description)


def invalid_client(description: str, *, basic: bool = False) -> OAuthError:
    return OAuthError("invalid_client", description, status_code=401 if basic else 400,
                      basic_challenge=basic)


def invalid_scope(scope: str) -> OAuthError:
    """The requested scope that cannot be granted, cut to the characters and length RFC 6749
    5.2 allows an error_description (it is the client's own text)."""
    return OAuthError("invalid_scope", f"scope not allowed for this client: {_quoted(scope)[:100]}")


def unsupported_grant_type(description: str) -> OAuthError:
    return OAuthError("unsupported_grant_type", description)


def _quoted(text: str) -> str:
    # RFC 6750 3: error_description is %x20-21 / %x23-5B / %x5D-7E, so no quote or backslash.
    return "".join(c for c in text if " " <= c <= "~" and c not in '"\\')


def invalid_token_headers(description: str) -> dict[str, str]:
    """The RFC 6750 3 challenge every 401 for an unusable bearer token carries."""
    challenge = (
        f'Bearer {_REALM}, error="invalid_token", error_description="{_quoted(description)}"'
    )
    return {"www-authenticate": challenge, "cache-control": "no-store"}


def invalid_token_response(description: str = "the access token is invalid") -> JSONResponse:
    """401 for a present but unusable bearer token (RFC 6750 3.1 `invalid_token`)."""
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        401,
        headers=invalid_token_headers(description),
    )


def unauthenticated_response() -> JSONResponse:
    """401 for a request without credentials: RFC 6750 3.1 says no error code then."""
    return JSONResponse(
        {"error": "unauthenticated", "error_description": "a bearer token is required"},
        401,
        headers={"www-authenticate": f"Bearer {_REALM}", "cache-control": "no-store"},
    )


def forbidden_response(error: Forbidden) -> JSONResponse:
    """403 for a services `Forbidden`: `insufficient_scope` naming the scope when one is needed
    (RFC 6750 3.1), else a tenancy refusal that no other token scope would fix."""
    if error.needed_scope:
        challenge = (
            f'Bearer {_REALM}, error="insufficient_scope", scope="{_quoted(error.needed_scope)}"'
        )
        return JSONResponse(
            {"error": "insufficient_scope", "error_description": error.message,
             "scope": error.needed_scope},
            403,
            headers={"www-authenticate": challenge},
        )
    return JSONResponse({"error": "forbidden", "error_description": error.message}, 403)
