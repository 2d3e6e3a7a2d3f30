"""Staff accounts and console sign-in: create, list, disable, reset a password (operator, from
the CLI); sign in, resume and end a console session. Passwords are hashed with argon2id."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.domain import text
from api.domain.errors import Conflict, DomainError, Invalid, NotFound, RateLimited
from api.domain.organizations import OrganizationKind
from api.domain.principal import Principal
from api.domain.staff import ConsoleSession, StaffRole, StaffUser
from api.domain.text import check_texts
from api.services.capabilities import staff_scopes
from api.services.policy import utcnow
from api.services.repositories import UnitOfWork

CONSOLE_CLIENT_ID = "console"
MIN_PASSWORD_LENGTH = 12
_MAX_PASSWORD_LENGTH = 1024
_FAILURE_WINDOW = timedelta(minutes=15)
# From one address: enough for an office behind one NAT, too few for guessing.
_MAX_FAILURES_PER_ADDRESS = 50
_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified when the e-mail address is unknown, so an answer takes as long either way.
_DECOY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
# Stored instead of a hash for an account that signs in by single sign-on only: no password
# verifies against it (argon2 refuses it as a hash).
SINGLE_SIGN_ON_ONLY = "!single-sign-on-only"


class LoginRefused(DomainError):
    """Wrong e-mail address or password, or a disabled account: one answer for all three."""

    code = "UNAUTHENTICATED"

    def __init__(self) -> None:
        super().__init__("the e-mail address or password is not right")


@dataclass(frozen=True)
class CreateStaffUser:
    organization_id: UUID
    email: str
    role: StaffRole
    password: str | None  # None: the account signs in by single sign-on only
    supporter_id: UUID | None = None


@dataclass(frozen=True)
class LoginPolicy:
    idle_timeout: timedelta
    absolute_timeout: timedelta
    max_failures: int


@dataclass(frozen=True)
class SignedIn:
    token: str  # goes in the session cookie; only its hash is stored
    session: ConsoleSession


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    if len(password) > _MAX_PASSWORD_LENGTH:
        raise Invalid(f"must have at most {_MAX_PASSWORD_LENGTH} characters", field="password")
    check_texts([("password", password, _MAX_PASSWORD_LENGTH)])


def _check_email(email: str) -> str:
    email = email.strip()
    local, at, domain = email.rpartition("@")[0], "@" in email, email.rpartition("@")[2]
    if not (at and local and "." in domain) or any(c.isspace() for c in email):
        raise Invalid("must be an e-mail address", field="email")
    check_texts([("email", email, text.EMAIL)])
    return email


async def create_user(uow: UnitOfWork, command: CreateStaffUser) -> StaffUser:
    """Open a staff account (platform operator): a supporter's names their peer supporter."""
    email = _check_email(command.email)
    if command.password is None:
        password_hash = SINGLE_SIGN_ON_ONLY
    else:
        check_password(command.password)
        password_hash = await asyncio.to_thread(_HASHER.hash, command.password)
    async with uow:
        (organization,) = await uow.organizations.get_many([command.organization_id])
        if organization is None:
            raise NotFound("Organization", command.organization_id)
        wants_clinic = command.role.for_clinics
        if wants_clinic != (organization.kind is OrganizationKind.CLINIC):
            raise Invalid(
                "the clinic role is for clinics; the others for peer organizations", field="role"
            )
        supporter_id = await _supporter_of(uow, command)
        if await uow.staff.by_email(email) is not None:
            raise Conflict("an account with this e-mail address already exists")
        user = await uow.staff.add(
            organization.id, email, command.role, supporter_id, password_hash
        )
        await uow.commit()
    return user


async def _supporter_of(uow: UnitOfWork, command: CreateStaffUser) -> UUID | None:
    if command.role is not StaffRole.SUPPORTER:
        if command.supporter_id is not None:
            raise Invalid("only a supporter's account names a peer supporter", field="supporter")
        return None
    if command.supporter_id is None:
        raise Invalid("a supporter's account names their peer supporter", field="supporter")
    (supporter,) = await uow.supporters.get_many([command.supporter_id])
    if supporter is None or supporter.organization_id != command.organization_id:
        raise NotFound("PeerSupporter", command.supporter_id)
    return supporter.id


async def list_users(uow: UnitOfWork, organization_id: UUID | None = None) -> list[StaffUser]:
    async with uow:
        return await uow.staff.list(organization_id)


async def _account(uow: UnitOfWork, email: str) -> StaffUser:
    found = await uow.staff.by_email(email.strip())
    if found is None:
        raise NotFound("StaffUser", email.strip())
    return found[0]


async def disable_user(uow: UnitOfWork, email: str) -> StaffUser:
    """Disable an account and end its sessions at once."""
    async with uow:
        user = await _account(uow, email)
        await uow.staff.disable(user.id, utcnow())
        await uow.commit()
    return user


async def reset_password(uow: UnitOfWork, email: str, password: str) -> StaffUser:
    """Set a new password; the account's open sessions end."""
    check_password(password)
    password_hash = await asyncio.to_thread(_HASHER.hash, password)
    async with uow:
        user = await _account(uow, email)
        await uow.staff.set_password(user.id, password_hash, utcnow())
        await uow.commit()
    return user


# --- console sessions -------------------------------------------------------------------------


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "replace")).digest()


def _storable(value: str) -> str:
    """Text PostgreSQL can keep (no NUL, no lone surrogate): what a refused address is
    counted under."""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _verifies(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return False


async def sign_in(
    uow: UnitOfWork, email: str, password: str, source_ip: str | None, policy: LoginPolicy
) -> SignedIn:
    """Check the password (rate-limited per e-mail address and per source address) and open a
    session. Every refusal is the same `LoginRefused`, or `RateLimited` after too many."""
    email_key = _storable(email.strip().lower())[: text.EMAIL]
    now = utcnow()
    async with uow.autocommit():
        by_email, by_ip = await uow.staff.failures_since(
            email_key, source_ip, now - _FAILURE_WINDOW
        )
        found = await uow.staff.by_email(email_key)
        await uow.commit()
    if by_email >= policy.max_failures or by_ip >= _MAX_FAILURES_PER_ADDRESS:
        raise RateLimited(
            "too many failed sign-ins: wait 15 minutes and try again",
            retry_after_s=int(_FAILURE_WINDOW.total_seconds()),
        )
    usable = found is not None and found[1] != SINGLE_SIGN_ON_ONLY
    # The decoy for an account without a password too: the answer takes as long as any.
    password_hash = found[1] if found is not None and usable else _DECOY_HASH
    # No database connection is held while argon2 works (tens of milliseconds of CPU): a
    # morning's burst of sign-ins would otherwise take the whole pool and answer 503s.
    good = await asyncio.to_thread(_verifies, password_hash, password)
    async with uow:
        if found is None or not usable or not good or found[0].disabled:
            await uow.staff.add_failure(email_key, source_ip, now)
            await uow.commit()
            raise LoginRefused()
        await uow.staff.clear_failures(email_key)
        signed_in = await _open_session(uow, found[0], now)
        await uow.commit()
    return signed_in


async def _open_session(uow: UnitOfWork, user: StaffUser, now: datetime) -> SignedIn:
    token = secrets.token_urlsafe(32)
    csrf_token = secrets.token_urlsafe(32)
    await uow.staff.add_session(_token_hash(token), user.id, csrf_token, now)
    return SignedIn(token, ConsoleSession(user, csrf_token, now, now))


async def resume_session(
    uow: UnitOfWork, token: str, policy: LoginPolicy, *, activity: bool = True
) -> ConsoleSession | None:
    """The session of this cookie token, if still open (not idle too long, not too old, the
    account not disabled); marks it used now unless this is no `activity` of the person (a
    live-update stream re-checking it). None otherwise (and an expired one is ended)."""
    now = utcnow()
    token_hash = _token_hash(token)
    async with uow:
        session = await uow.staff.session(token_hash)
        if session is None:
            return None
        expired = (
            now - session.last_seen_at > policy.idle_timeout
            or now - session.created_at > policy.absolute_timeout
            or session.user.disabled
        )
        if expired:
            await uow.staff.end_session(token_hash)
        elif activity:
            await uow.staff.touch_session(token_hash, now)
        await uow.commit()
    return None if expired else session


async def sign_out(uow: UnitOfWork, token: str) -> None:
    async with uow:
        await uow.staff.end_session(_token_hash(token))
        await uow.commit()


# --- single sign-on (OpenID Connect) --------------------------------------------------------

SIGN_IN_FLOW_LIFETIME = timedelta(minutes=10)


class SingleSignOnRefused(DomainError):
    """The provider vouched for someone who may not sign in here: one answer for every
    reason, so the page tells nobody which accounts exist."""

    code = "UNAUTHENTICATED"

    def __init__(self, reason: str) -> None:
        super().__init__("single sign-on found no console account you may use")
        self.reason = reason  # which rule refused, for the log; never who


@dataclass(frozen=True)
class SingleSignOnPolicy:
    """How a provider's ID token claims map to a staff account."""

    organization_claim: str  # dotted path to the PeerBridge organization id
    role_claim: str  # dotted path to the role name(s)
    allowed_roles: frozenset[StaffRole]
    # The one organization this provider speaks for; None: a network-wide provider whose
    # organization claim decides.
    organization_id: UUID | None = None
    email_claim: str = "email"  # dotted path to the address the account is found by


def _claim(claims: Mapping[str, object], path: str) -> object:
    value: object = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _claimed_roles(value: object) -> set[str]:
    if isinstance(value, str):
        return set(value.replace(",", " ").split())
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def _claimed_organization(value: object) -> UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None


async def sign_in_with_provider(
    uow: UnitOfWork,
    claims: Mapping[str, object],
    policy: SingleSignOnPolicy,
    login: LoginPolicy,
) -> SignedIn:
    """Open a console session for the account a validated ID token names: the same e-mail
    address (verified, if the provider says), in the organization the token claims (and the
    provider speaks for), not disabled, with a role the provider grants and this deployment
    allows by single sign-on. No account is ever created here: the provider vouches for a
    person, the organization decides who has a console account. Refusals are
    `SingleSignOnRefused`."""
    email = _claim(claims, policy.email_claim)
    if not isinstance(email, str) or not email.strip() or len(email) > text.EMAIL:
        raise SingleSignOnRefused("no usable email claim")
    if claims.get("email_verified") is False:
        raise SingleSignOnRefused("email not verified by the provider")
    claimed = _claim(claims, policy.organization_claim)
    organization_id = _claimed_organization(claimed)
    if policy.organization_id is not None:
        # An organization's own provider need not know PeerBridge's ids; if it names one, it
        # must be this organization's.
        if claimed is not None and organization_id != policy.organization_id:
            raise SingleSignOnRefused("organization claim of another organization")
        organization_id = policy.organization_id
    if organization_id is None:
        raise SingleSignOnRefused("no organization claim")
    roles = _claimed_roles(_claim(claims, policy.role_claim))
    now = utcnow()
    async with uow:
        found = await uow.staff.by_email(_storable(email.strip()))
        if found is None:
            raise SingleSignOnRefused("no account")
        user = found[0]
        if user.disabled:
            raise SingleSignOnRefused("account disabled")
        if user.organization_id != organization_id:
            raise SingleSignOnRefused("account of another organization")
        if user.role not in policy.allowed_roles or user.role.value not in roles:
            raise SingleSignOnRefused("role not granted or not allowed")
        signed_in = await _open_session(uow, user, now)
        await uow.commit()
    return signed_in


async def keep_sign_in_flow(uow: UnitOfWork, key: str, data: str) -> None:
    """Keep what a single sign-on's callback needs (nonce, PKCE verifier), for a while."""
    async with uow:
        await uow.staff.keep_sign_in_flow(key, data, utcnow() + SIGN_IN_FLOW_LIFETIME)
        await uow.commit()


async def take_sign_in_flow(uow: UnitOfWork, key: str) -> str | None:
    """A single sign-on's kept data, once (a replayed callback finds nothing)."""
    async with uow:
        data = await uow.staff.take_sign_in_flow(key, utcnow())
        await uow.commit()
    return data


def csrf_matches(session: ConsoleSession, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf_token, sent)


def principal_of(user: StaffUser, source_ip: str | None = None) -> Principal:
    """The console's caller: the person (subject = account id) in their organization, with
    the scopes of their role, so every read and write is decided and audited as them."""
    return Principal(
        client_id=CONSOLE_CLIENT_ID,
        organization_id=user.organization_id,
        scopes=staff_scopes(user.role),
        subject=str(user.id),
        source_ip=source_ip,
        caseload_of=user.supporter_id if user.role is StaffRole.SUPPORTER else None,
    )
