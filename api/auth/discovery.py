"""Discovery documents: SMART configuration (SMART App Launch 2) and RFC 8414 server metadata.

https://hl7.org/fhir/smart-app-launch/conformance.html
https://www.rfc-editor.org/rfc/rfc8414#section-2
"""

from __future__ import annotations

from typing import Any

from api.auth.assertions import ASSERTION_ALGORITHMS
from api.auth.config import AuthConfig
from api.services.policy import CAPABILITY_SCOPES

AUTH_METHODS = ("private_key_jwt", "client_secret_basic")


def scopes_supported() -> list[str]:
    """Every scope the capability table asks for, as `system/` and `user/` scopes."""
    texts = {
        f"{context}/{scope.resource_type}.{scope.permissions}"
        for needed in CAPABILITY_SCOPES.values()
        for scope in needed
        for context in ("system", "user")
    }
    return ["system/*.cruds", "user/*.cruds", *sorted(texts)]


def _server_metadata(config: AuthConfig) -> dict[str, Any]:
    return {
        "issuer": config.issuer,
        "token_endpoint": config.token_url,
        "jwks_uri": config.jwks_url,
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "scopes_supported": scopes_supported(),
    }


def smart_configuration(config: AuthConfig) -> dict[str, Any]:
    """`/.well-known/smart-configuration` for backend services (no user launch, no PKCE flow:
    `code_challenge_methods_supported` is listed because SMART requires the field)."""
    return {
        **_server_metadata(config),
        "capabilities": [
            "client-confidential-asymmetric",
            "client-confidential-symmetric",
            "permission-v2",
            "permission-v1",
        ],
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": [],
    }


def authorization_server_metadata(config: AuthConfig) -> dict[str, Any]:
    """`/.well-known/oauth-authorization-server` (RFC 8414 2); no authorization endpoint,
    so no response types."""
    return {**_server_metadata(config), "response_types_supported": []}
