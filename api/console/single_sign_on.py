"""Single sign-on to the console with the organization's OpenID Connect provider, through
authlib's Starlette client: the authorization code flow with PKCE (S256), state and nonce.
authlib checks the ID token (signature with the provider's JWKS, issuer, audience, nonce,
expiry); the services map its claims to a staff account or refuse (users.sign_in_with_provider);
the session that follows is the one a password sign-in opens.

Several providers may be offered (the flat PEERBRIDGE_OIDC_* one and PEERBRIDGE_OIDC_PROVIDERS,
one per organization that brings its own): each has its own addresses, so its callback can only
finish a flow started with it (and answers from one provider cannot be replayed at another's).

A flow in flight is kept in the database (any replica may receive the callback) and bound to
the browser that started it: a cookie holds its `state`, and a callback whose `state` is not
that cookie's finds nothing. Nothing the provider sends (tokens, claims, its error text) is
logged: only which rule refused.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx2
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response

from api.console.sign_in import login_form, open_console_session
from api.console.web import login_policy, unit_of_work
from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import users
from api.services.users import SingleSignOnPolicy, SingleSignOnRefused
from api.settings import DEFAULT_OIDC_PROVIDER, OidcProvider, Settings

_FLOW_COOKIE = "peerbridge-sso-flow"
_FLOW_COOKIE_PATH = "/console/sso"
_FLOW_LIFETIME_S = int(users.SIGN_IN_FLOW_LIFETIME.total_seconds())
_PROVIDER_TIMEOUT_S = 10.0
_REFUSED = (
    "Single sign-on did not work: your account may not use the console this way. Try again, "
    "or ask your coordinator."
)
_UNREACHABLE = "The sign-in provider cannot be reached right now: please try again later."
# What a provider's answer (or silence) can raise inside authlib; each becomes the refusal.
_PROVIDER_ERRORS = (OAuthError, JoseError, ValueError, KeyError, TypeError)

_log = logging.getLogger(__name__)


class _FlowStore:
    """authlib's cache of flows in flight, in the database through the services."""

    def __init__(self, state: State) -> None:
        self._state = state

    def _uow(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self._state.pool)

    async def get(self, key: str) -> str | None:
        return await users.take_sign_in_flow(self._uow(), key)

    async def set(self, key: str, value: str, expires_in: int | None = None) -> None:
        await users.keep_sign_in_flow(self._uow(), key, value)

    async def delete(self, key: str) -> None:
        """Nothing left to delete: `get` took the flow."""


def policy_of(provider: OidcProvider) -> SingleSignOnPolicy:
    return SingleSignOnPolicy(
        organization_claim=provider.organization_claim,
        role_claim=provider.role_claim,
        email_claim=provider.email_claim,
        allowed_roles=frozenset(StaffRole(name) for name in provider.allowed_role_names),
        organization_id=provider.organization,
    )


def _state_key_prefix(provider: OidcProvider) -> str:
    return f"_state_{provider.key}_"  # how authlib names a flow's state


def _chosen(request: Request) -> OidcProvider | None:
    settings: Settings = request.app.state.settings
    key = request.path_params.get("provider", DEFAULT_OIDC_PROVIDER)
    return next((p for p in settings.single_sign_on_providers if p.key == key), None)


def _client(request: Request, provider: OidcProvider) -> Any:
    """The app's authlib client of the provider, made on first use (it caches the provider's
    discovery document and JWKS, refetching the JWKS when a token names an unknown key)."""
    state = request.app.state
    registry = getattr(state, "single_sign_on", None)
    if registry is None:
        registry = state.single_sign_on = OAuth(cache=_FlowStore(state))
    client = registry.create_client(provider.key)
    if client is None:
        client = registry.register(
            provider.key,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            server_metadata_url=(
                f"{provider.issuer.rstrip('/')}/.well-known/openid-configuration"
            ),
            client_kwargs={
                "scope": "openid email profile",
                "code_challenge_method": "S256",
                "timeout": _PROVIDER_TIMEOUT_S,
            },
        )
    return client


def _claims_options(provider: OidcProvider) -> dict[str, Any]:
    # authlib checks `aud` only when told to; the issuer is the configured one, not merely
    # whatever the discovery document says.
    return {
        "iss": {"essential": True, "values": [provider.issuer]},
        "aud": {"essential": True, "values": [provider.client_id]},
    }


def _not_configured(request: Request) -> Response:
    return login_form(request, 404, "Single sign-on is not set up here.")


async def start(request: Request) -> Response:
    """Send the browser to the provider, remembering the flow for the callback."""
    settings: Settings = request.app.state.settings
    provider = _chosen(request)
    if provider is None:
        return _not_configured(request)
    session: dict[str, Any] = {}
    request.scope["session"] = session  # authlib's Starlette client keeps its marker there
    try:
        response: Response = await _client(request, provider).authorize_redirect(
            request, settings.base_url + provider.callback_path
        )
    except (httpx2.HTTPError, *_PROVIDER_ERRORS) as error:
        _log.warning("console single sign-on: provider unreachable (%s)", type(error).__name__)
        return login_form(request, 503, _UNREACHABLE)
    (state,) = (key.removeprefix(_state_key_prefix(provider)) for key in session)
    response.headers["cache-control"] = "no-store"
    response.headers["referrer-policy"] = "no-referrer"
    response.set_cookie(
        _FLOW_COOKIE,
        state,
        max_age=_FLOW_LIFETIME_S,
        path=_FLOW_COOKIE_PATH,
        secure=settings.is_production,
        httponly=True,
        samesite="lax",  # the callback is a top-level navigation from the provider's site
    )
    return response


async def callback(request: Request) -> Response:
    """The provider's answer: exchange the code, check the ID token, open a console session
    for the account it maps to, or refuse with one generic message."""
    settings: Settings = request.app.state.settings
    provider = _chosen(request)
    if provider is None:
        return _not_configured(request)
    flow = request.cookies.get(_FLOW_COOKIE)
    marker = f"{_state_key_prefix(provider)}{flow}"
    request.scope["session"] = {marker: {"exp": time.time() + _FLOW_LIFETIME_S}} if flow else {}
    try:
        token = await _client(request, provider).authorize_access_token(
            request, claims_options=_claims_options(provider), leeway=settings.auth_leeway_s
        )
        claims = token.get("userinfo")
        if not claims:
            raise SingleSignOnRefused("no ID token")
        signed_in = await users.sign_in_with_provider(
            unit_of_work(request), claims, policy_of(provider), login_policy(settings)
        )
    except SingleSignOnRefused as refused:
        _log.warning("console single sign-on refused: %s", refused.reason)
        return _refused(request)
    except httpx2.HTTPError as error:
        _log.warning("console single sign-on: provider unreachable (%s)", type(error).__name__)
        return _forget_flow(login_form(request, 503, _UNREACHABLE))
    except _PROVIDER_ERRORS as error:
        claim = getattr(error, "claim", None)
        _log.warning(
            "console single sign-on refused: %s%s",
            type(error).__name__,
            f" ({claim})" if isinstance(claim, str) else "",
        )
        return _refused(request)
    return _forget_flow(open_console_session(settings, signed_in))


def _refused(request: Request) -> Response:
    return _forget_flow(login_form(request, 401, _REFUSED))


def _forget_flow(response: Response) -> Response:
    response.delete_cookie(_FLOW_COOKIE, path=_FLOW_COOKIE_PATH)
    return response
