"""Single sign-on to the console against a real OpenID Connect provider on 127.0.0.1
(tests/oidc_provider.py): the whole redirect flow over HTTP, the ID token checked, the claims
mapped to an existing account or refused with one generic page, nothing secret logged."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from joserfc.jwk import RSAKey
from network import Network
from oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from starlette.applications import Starlette

from api.app import create_app
from api.db.uow import PostgresUnitOfWork
from api.domain.staff import StaffRole
from api.services import users
from api.settings import OidcProvider, Settings

PASSWORD = "correct horse battery"
EMAIL = "lead@peer.example"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[Provider]:
    async with running_provider() as running:
        yield running


@pytest_asyncio.fixture
async def stranger_provider() -> AsyncIterator[Provider]:
    """A second organization's own provider (PEERBRIDGE_OIDC_PROVIDERS, pinned to it)."""
    async with running_provider() as running:
        yield running


@pytest.fixture
def settings(database_url: str, tmp_path: Path, provider: Provider) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        environment="development",
        delivery_worker_in_serve=False,
        public_base_url="http://testserver",
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_display_name="Example IdP",
    )


@pytest_asyncio.fixture
async def app(
    settings: Settings, stranger_provider: Provider, network: Network
) -> AsyncIterator[Starlette]:
    """The app offering the settings' provider and the stranger organization's own (the
    organization's id is known only once the network is built)."""
    stranger = OidcProvider(
        key="stranger",
        issuer=stranger_provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        display_name="Stranger Peers' accounts",
        organization=network.stranger.id,
    )
    application = create_app(settings.model_copy(update={"oidc_providers": (stranger,)}))
    async with LifespanManager(application):
        yield application


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The browser's side of the trip to the provider (real HTTP on loopback)."""
    async with httpx.AsyncClient() as client:
        yield client


async def _account(pool: asyncpg.Pool, organization_id: Any, email: str = EMAIL) -> None:
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(organization_id, email, StaffRole.COORDINATOR, PASSWORD),
    )


def _person(network: Network, **changes: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "email_verified": True,
        "org": str(network.peer.id),
        "roles": ["coordinator"],
        **changes,
    }


async def _sign_on(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, key: str | None = None
) -> httpx.Response:
    """Start at the console, let the provider sign the person in, come back with its code."""
    base = f"/console/sso/{key}" if key else "/console/sso"
    start = await client.get(f"{base}/start")
    assert start.status_code == 302, start.text
    at_provider = await browser.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.netloc == "testserver" and back.path == f"{base}/callback"
    return await client.get(f"{back.path}?{back.query}")


def _session_cookie(response: httpx.Response) -> str | None:
    return next(
        (c for c in response.headers.get_list("set-cookie") if c.startswith("peerbridge-console=")),
        None,
    )


async def test_the_sign_in_page_offers_each_provider(client: httpx.AsyncClient) -> None:
    page = await client.get("/console/login")
    assert '<a href="/console/sso/start">Sign in with Example IdP</a>' in page.text
    assert '<a href="/console/sso/stranger/start">Sign in with Stranger Peers&#39; accounts' in (
        page.text
    )


async def test_an_organizations_own_provider_signs_in_its_people_only(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    stranger_provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
) -> None:
    await _account(pool, network.peer.id)
    await _account(pool, network.stranger.id, "lead@stranger.example")
    # It vouches for the peer's coordinator, claiming the peer: not its organization.
    stranger_provider.person = _person(network)
    refused = await _sign_on(client, browser, "stranger")
    assert refused.status_code == 401 and _session_cookie(refused) is None
    # Its own person, with no organization claim at all (it speaks for one organization).
    stranger_provider.person = {"email": "lead@stranger.example", "roles": "coordinator"}
    signed_in = await _sign_on(client, browser, "stranger")
    assert signed_in.status_code == 303 and _session_cookie(signed_in) is not None
    assert "lead@stranger.example" in (await client.get("/console/inbox")).text


async def test_one_providers_answer_is_refused_at_anothers_callback(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
) -> None:
    await _account(pool, network.peer.id)
    provider.person = _person(network)
    start = await client.get("/console/sso/start")
    back = urlsplit((await browser.get(start.headers["location"])).headers["location"])
    mixed_up = await client.get(f"/console/sso/stranger/callback?{back.query}")
    assert mixed_up.status_code == 401 and _session_cookie(mixed_up) is None
    assert (await client.get("/console/inbox")).headers["location"] == "/console/login"


async def test_an_unknown_provider_is_not_found(client: httpx.AsyncClient) -> None:
    assert (await client.get("/console/sso/nobody/start")).status_code == 404
    assert (await client.get("/console/sso/nobody/callback?code=x&state=y")).status_code == 404


async def test_single_sign_on_opens_the_same_session_as_a_password(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
) -> None:
    await _account(pool, network.peer.id)
    provider.person = _person(network)
    signed_in = await _sign_on(client, browser)

    assert signed_in.status_code == 303, signed_in.text
    assert signed_in.headers["location"] == "/console/inbox"
    cookie = _session_cookie(signed_in)
    assert cookie is not None
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Max-Age=43200" in cookie  # the absolute timeout, as for a password sign-in
    inbox = await client.get("/console/inbox")
    assert inbox.status_code == 200 and EMAIL in inbox.text
    assert _TOKEN.search(inbox.text)  # the session's CSRF token, as for a password sign-in

    (asked,) = provider.authorize_requests
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["nonce"] and asked["state"]
    assert asked["redirect_uri"] == "http://testserver/console/sso/callback"
    assert set(asked["scope"].split()) >= {"openid", "email"}
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM console_sign_in_flows") == 0


async def test_a_replayed_callback_is_refused(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
) -> None:
    await _account(pool, network.peer.id)
    provider.person = _person(network)
    start = await client.get("/console/sso/start")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    back = urlsplit((await browser.get(start.headers["location"])).headers["location"])
    first = await client.get(f"{back.path}?{back.query}")
    assert first.status_code == 303
    # The same answer again (with the flow cookie put back): the flow was taken once.
    client.cookies.set("peerbridge-sso-flow", state, path="/console/sso")
    again = await client.get(f"{back.path}?{back.query}")
    assert again.status_code == 401 and _session_cookie(again) is None


async def test_a_callback_in_another_browser_is_refused(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
    app: Any,
) -> None:
    """Login CSRF: an attacker's own code and state, sent into a victim's browser, that never
    started this flow, open no session there."""
    await _account(pool, network.peer.id)
    provider.person = _person(network)
    start = await client.get("/console/sso/start")
    back = urlsplit((await browser.get(start.headers["location"])).headers["location"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as victim:
        response = await victim.get(f"{back.path}?{back.query}")
        assert response.status_code == 401 and _session_cookie(response) is None
        assert (await victim.get("/console/inbox")).headers["location"] == "/console/login"


_OTHER_KEY = RSAKey.generate_key(2048, {"kid": "idp-1"})


@pytest.mark.parametrize(
    "case",
    [
        "wrong audience",
        "wrong nonce",
        "bad signature",
        "expired token",
        "unknown user",
        "disabled user",
        "another organization",
        "organization claim missing",
        "role not granted",
        "e-mail not verified",
    ],
)
async def test_refusals_open_no_session_and_read_the_same(
    case: str,
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
) -> None:
    await _account(pool, network.peer.id)
    await _account(pool, network.stranger.id, "lead@stranger.example")
    provider.person = _person(network)
    if case == "wrong audience":
        provider.tamper = {"aud": "some-other-client"}
    elif case == "wrong nonce":
        provider.tamper = {"nonce": "not-the-nonce-we-sent"}
    elif case == "bad signature":
        provider.forger = _OTHER_KEY
    elif case == "expired token":
        provider.tamper = {"exp": 1_000_000_000, "iat": 999_999_000}
    elif case == "unknown user":
        provider.person = _person(network, email="nobody@peer.example")
    elif case == "disabled user":
        await users.disable_user(PostgresUnitOfWork(pool), EMAIL)
    elif case == "another organization":
        # The provider vouches for the stranger's coordinator but says they are the peer's.
        provider.person = _person(network, email="lead@stranger.example")
    elif case == "organization claim missing":
        provider.person = {k: v for k, v in _person(network).items() if k != "org"}
    elif case == "role not granted":
        provider.person = _person(network, roles=["supporter"])
    elif case == "e-mail not verified":
        provider.person = _person(network, email_verified=False)

    refused = await _sign_on(client, browser)

    assert refused.status_code == 401, case
    assert _session_cookie(refused) is None
    assert "Single sign-on did not work" in refused.text
    assert "lead@" not in refused.text
    assert (await client.get("/console/inbox")).headers["location"] == "/console/login"


async def test_an_unreachable_provider_is_a_page_not_a_crash(settings: Settings) -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    unreachable = settings.model_copy(update={"oidc_issuer": "http://127.0.0.1:9"})
    app = create_app(unreachable)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.get("/console/sso/start")
    assert response.status_code == 503
    assert "cannot be reached" in response.text


async def test_a_provider_pinned_to_one_organization_signs_in_nobody_else(
    network: Network, pool: asyncpg.Pool
) -> None:
    await _account(pool, network.stranger.id, "lead@stranger.example")
    policy = users.SingleSignOnPolicy(
        organization_claim="org",
        role_claim="roles",
        allowed_roles=frozenset(StaffRole),
        organization_id=network.peer.id,
    )
    login = users.LoginPolicy(timedelta(minutes=30), timedelta(hours=12), max_failures=5)
    claims = {
        "email": "lead@stranger.example",
        "org": str(network.stranger.id),
        "roles": "coordinator",
    }
    with pytest.raises(users.SingleSignOnRefused):
        await users.sign_in_with_provider(PostgresUnitOfWork(pool), claims, policy, login)
    # Pinned, the provider need not send the organization claim at all.
    peer_lead = {"email": EMAIL, "roles": "coordinator"}
    await _account(pool, network.peer.id)
    pinned = await users.sign_in_with_provider(PostgresUnitOfWork(pool), peer_lead, policy, login)
    assert pinned.session.user.organization_id == network.peer.id
    unpinned = users.SingleSignOnPolicy("org", "roles", frozenset(StaffRole))
    with pytest.raises(users.SingleSignOnRefused):
        await users.sign_in_with_provider(PostgresUnitOfWork(pool), peer_lead, unpinned, login)
    # A provider that names people by another claim (Entra's user principal name).
    upn = replace(policy, email_claim="preferred_username")
    entra = {"preferred_username": EMAIL, "roles": ["coordinator"]}
    by_upn = await users.sign_in_with_provider(PostgresUnitOfWork(pool), entra, upn, login)
    assert by_upn.session.user.email == EMAIL
    signed_in = await users.sign_in_with_provider(PostgresUnitOfWork(pool), claims, unpinned, login)
    assert signed_in.session.user.email == "lead@stranger.example"


async def test_nothing_secret_is_logged(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    provider: Provider,
    network: Network,
    pool: asyncpg.Pool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _account(pool, network.peer.id)
    caplog.set_level(logging.DEBUG)
    provider.person = _person(network)
    assert (await _sign_on(client, browser)).status_code == 303
    provider.tamper = {"nonce": "forged"}
    assert (await _sign_on(client, browser)).status_code == 401

    assert "console single sign-on refused: InvalidClaimError (nonce)" in caplog.text
    for record in caplog.records:
        line = record.getMessage()
        secrets = [*provider.tokens, CLIENT_SECRET, EMAIL]
        assert not any(s in line for s in secrets), (record.name, line)
        # The test's own HTTP clients (the browser's side) log the callback URL with its
        # code; the app's own lines never hold one.
        if not record.name.startswith(("httpx", "httpcore")):
            assert not any(code in line for code in provider.codes), (record.name, line)


async def test_the_providers_own_refusal_is_the_generic_page(client: httpx.AsyncClient) -> None:
    start = await client.get("/console/sso/start")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    answer = await client.get(
        "/console/sso/callback",
        params={"error": "access_denied", "error_description": "<b>nope</b>", "state": state},
    )
    assert answer.status_code == 401 and _session_cookie(answer) is None
    assert "Single sign-on did not work" in answer.text and "nope" not in answer.text
