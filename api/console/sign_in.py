"""Sign in and out of the console: a form with `email` and `password`, one generic refusal,
rate-limited by the service; the session cookie is HttpOnly, SameSite=Lax, Secure in
production."""

from __future__ import annotations

import hmac

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.console.web import (
    LOGIN_CSRF_COOKIE,
    Staff,
    login_policy,
    new_csrf_token,
    redirect,
    render,
    session_cookie,
    source_ip,
    staff_page,
    unit_of_work,
)
from api.domain.errors import RateLimited
from api.domain.staff import StaffRole
from api.services import users
from api.settings import Settings

HOME_OF_ROLE = {
    StaffRole.COORDINATOR: "/console/inbox",
    StaffRole.SUPPORTER: "/console/caseload",
    StaffRole.SUPERVISOR: "/console/supervision",
    StaffRole.CLINIC: "/console/sent",
}
_REFUSED = "The e-mail address or password is not right."
_CSRF_LIFETIME_S = 3600


def login_form(request: Request, status: int = 200, error: str | None = None) -> Response:
    # Before sign-in there is no session: the form's token is also set as a cookie (double
    # submit), so a page of another site cannot post a sign-in into this browser.
    settings: Settings = request.app.state.settings
    token = new_csrf_token()
    response = render(
        request,
        "login.html",
        status,
        login_csrf=token,
        error=error,
        single_sign_on=[(p.display_name, p.start_path) for p in settings.single_sign_on_providers],
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=_CSRF_LIFETIME_S,
        path="/console/login",
        secure=settings.is_production,
        httponly=True,
        samesite="strict",
    )
    return response


async def login_page(request: Request) -> Response:
    return login_form(request)


async def login(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    try:
        form = await request.form(max_files=0, max_fields=10)
    except HTTPException:  # python-multipart refused the body: the page again, not plain text
        return login_form(request, 400, "The sign-in form could not be read: please try again.")
    email, password, sent_token = (form.get(n) for n in ("email", "password", "csrf_token"))
    cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not (
        isinstance(sent_token, str)
        and cookie_token
        and hmac.compare_digest(sent_token, cookie_token)
    ):
        return login_form(request, 403, "The sign-in form expired: please try again.")
    if not (isinstance(email, str) and isinstance(password, str) and email and password):
        return login_form(request, 422, "Enter your e-mail address and password.")
    try:
        signed_in = await users.sign_in(
            unit_of_work(request), email, password, source_ip(request), login_policy(settings)
        )
    except RateLimited:
        return login_form(request, 429, "Too many failed sign-ins: wait 15 minutes and try again.")
    except users.LoginRefused:
        return login_form(request, 401, _REFUSED)
    response = open_console_session(settings, signed_in)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


def open_console_session(settings: Settings, signed_in: users.SignedIn) -> Response:
    """To the person's home page with the session cookie, however they signed in."""
    response = redirect(HOME_OF_ROLE[signed_in.session.user.role])
    response.set_cookie(
        session_cookie(settings),
        signed_in.token,
        max_age=settings.console_absolute_timeout_s,
        path="/",
        secure=settings.is_production,
        httponly=True,
        samesite="lax",
    )
    return response


@staff_page()
async def home(staff: Staff) -> Response:
    return redirect(HOME_OF_ROLE[staff.role])


@staff_page()
async def logout(staff: Staff) -> Response:
    settings: Settings = staff.request.app.state.settings
    cookie = session_cookie(settings)
    await users.sign_out(staff.uow(), staff.request.cookies.get(cookie, ""))
    response = redirect("/console/login")
    response.delete_cookie(cookie, path="/", secure=settings.is_production, httponly=True)
    return response
