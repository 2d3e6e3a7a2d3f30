"""A minimal SMART Backend Services client: discover, sign an assertion, get a token.

For the CLI and the demo; it uses only what any client has (httpx, joserfc, the standard).
https://hl7.org/fhir/smart-app-launch/backend-services.html#obtaining-an-access-token
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

from api.auth.assertions import CLIENT_ASSERTION_TYPE


class TokenRequestFailed(Exception):
    """The server could not be reached or refused the request; the message says why."""


def sign_assertion(client_id: str, private_jwk: dict[str, Any], token_url: str) -> str:
    """An RFC 7523 client assertion as SMART asks: RS384 or ES384, kid, 5-minute expiry."""
    try:
        key = import_key(private_jwk)
    except (JoseError, ValueError, TypeError):
        raise TokenRequestFailed("the key file does not hold a private JWK") from None
    if isinstance(key, RSAKey):
        alg = "RS384"
    elif isinstance(key, ECKey) and key.curve_name == "P-384":
        alg = "ES384"
    else:
        raise TokenRequestFailed("SMART needs an RSA or P-384 EC key")
    if not key.is_private or not key.kid:
        raise TokenRequestFailed("the JWK must be private and have a kid")
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 300,
              "iat": now, "jti": secrets.token_urlsafe(16)}
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[alg])


def request_token(base_url: str, client_id: str, private_jwk: dict[str, Any],
                  *, scope: str | None = None, timeout: float = 10.0) -> str:
    """Discover the token endpoint from `/.well-known/smart-configuration` and get a token."""
    base = base_url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout) as http:
            config = http.get(f"{base}/.well-known/smart-configuration")
            config.raise_for_status()
            token_url = str(config.json()["token_endpoint"])
            form = {
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": sign_assertion(client_id, private_jwk, token_url),
            }
            if scope:
                form["scope"] = scope
            response = http.post(token_url, data=form)
    except (httpx.HTTPError, ValueError, KeyError) as error:
        raise TokenRequestFailed(f"cannot reach {base} ({type(error).__name__})") from None
    body = response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else {}
    if response.status_code != 200:
        raise TokenRequestFailed(
            f"token request refused: {body.get('error', response.status_code)}: "
            f"{body.get('error_description', '')}".rstrip(": ")
        )
    return str(body["access_token"])
