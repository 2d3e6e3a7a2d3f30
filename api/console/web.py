"""What every console page shares: templates, the signed-in person, CSRF, security headers,
and refusals rendered as pages."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.db.uow import PostgresUnitOfWork
from api.domain.errors import DomainError, Invalid, MalformedRequest, NotFound
from api.domain.principal import Principal
from api.domain.staff import ConsoleSession, StaffRole
from api.services import users
from api.services.users import LoginPolicy
from api.settings import Settings

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# Scripts and styles from this origin only (files of the package, never inline), the live
# updates' stream from here only; forms post back here only.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "cache-control": "no-store",  # pages show patient data: never kept by a browser or proxy
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
LOGIN_CSRF_COOKIE = "peerbridge-login-csrf"
_STATUS_OF_CODE = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "NOT_SUPPORTED": 405,
    "CONFLICT": 409,
    "TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 503,
}


def session_cookie(settings: Settings) -> str:
    # `__Host-`: the browser keeps it only if Secure, for this host, on path /.
    return "__Host-peerbridge-console" if settings.is_production else "peerbridge-console"


def login_policy(settings: Settings) -> LoginPolicy:
    return LoginPolicy(
        idle_timeout=timedelta(seconds=settings.console_idle_timeout_s),
        absolute_timeout=timedelta(seconds=settings.console_absolute_timeout_s),
        max_failures=settings.console_login_max_failures,
    )


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _TEMPLATES.get_template(template).render(request=request, **values)
    return HTMLResponse(html, status_code, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, 303, headers=SECURITY_HEADERS)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def unit_of_work(request: Request) -> PostgresUnitOfWork:
    return PostgresUnitOfWork(request.app.state.pool)


@dataclass(frozen=True)
class Staff:
    """The signed-in person on this request."""

    request: Request
    session: ConsoleSession
    principal: Principal
    form: FormData | None

    @property
    def role(self) -> StaffRole:
        return self.session.user.role

    def uow(self) -> PostgresUnitOfWork:
        return unit_of_work(self.request)

    def page(self, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        return render(
            self.request,
            template,
            status_code,
            user=self.session.user,
            csrf_token=self.session.csrf_token,
            **values,
        )

    def field(self, name: str) -> str:
        """A form field as sent ('' when absent); uploads are read with `upload`."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""


Handler = Callable[[Staff], Awaitable[Response]]


def source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def staff_page(*roles: StaffRole) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A page for these roles: no session → the sign-in page; another role → not found; a
    POST must carry the session's CSRF token; a refusal from the services becomes a page."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            settings: Settings = request.app.state.settings
            token = request.cookies.get(session_cookie(settings))
            session = (
                await users.resume_session(unit_of_work(request), token, login_policy(settings))
                if token
                else None
            )
            if session is None:
                return redirect("/console/login")
            principal = users.principal_of(session.user, source_ip(request))
            form = None
            if request.method == "POST":
                try:
                    form = await request.form(max_part_size=settings.max_request_body_bytes)
                except HTTPException as unreadable:  # python-multipart refused the body
                    error = MalformedRequest(f"the form could not be read ({unreadable.detail})")
                    return refusal_page(request, error, 400)
            try:
                staff = Staff(request, session, principal, form)
                return await _answer(request, handler, staff, roles)
            finally:
                if form is not None:
                    await form.close()  # uploads are spooled to temporary files

        return endpoint

    return wrap


async def _answer(
    request: Request, handler: Handler, staff: Staff, roles: tuple[StaffRole, ...]
) -> Response:
    """The handler's page, once the form's CSRF token and the person's role allow it."""
    if staff.form is not None and not users.csrf_matches(
        staff.session, _text(staff.form.get("csrf_token"))
    ):
        return refusal_page(request, Invalid("the form expired: open it again"), 403)
    if roles and staff.role not in roles:
        return refusal_page(request, NotFound("Page", request.url.path), staff=staff)
    try:
        return await handler(staff)
    except DomainError as error:
        return refusal_page(request, error, staff=staff)


def error_page(error: DomainError | None, headers: Mapping[str, str] | None = None) -> Response:
    """A refusal answered before a console handler ran (no route, a body over the limit, the
    database away) or a crash (`error` None): a page, in the console's shape."""
    if error is None:
        title, message, status = "Something went wrong", "Please try again in a moment.", 500
    else:
        title, message = "That did not work", error.message
        status = _STATUS_OF_CODE.get(error.code, 400)
    html = _TEMPLATES.get_template("refusal.html").render(title=title, message=message)
    return HTMLResponse(html, status, headers={**(headers or {}), **SECURITY_HEADERS})


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def refusal_page(
    request: Request, error: DomainError, status: int | None = None, staff: Staff | None = None
) -> HTMLResponse:
    """A refusal in the console's shape. Not-found and not-yours read the same to anyone."""
    code = error.code
    if code in ("NOT_FOUND", "FORBIDDEN") and not isinstance(error, Invalid):
        title, message = "Not found", "There is nothing here for you, or it does not exist."
        status = status or 404
    else:
        title, message = "That did not work", error.message
        status = status or _STATUS_OF_CODE.get(code, 422)
    values: Mapping[str, Any] = (
        {"user": staff.session.user, "csrf_token": staff.session.csrf_token} if staff else {}
    )
    return render(request, "refusal.html", status, title=title, message=message, **values)
