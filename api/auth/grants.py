"""Which scopes a token gets: the request narrowed to the client's registration (RFC 6749 3.3).

Authentication's share of scopes only; what each scope lets a caller do is the services policy's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from api.domain.scopes import (
    PERMISSION_ORDER,
    Scope,
    any_satisfies,
    names_a_resource_type,
    parse_scope,
    satisfies,
)


class ScopeRefused(Exception):
    """The request names a scope that is malformed or that the client was never allowed."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"scope not allowed for this client: {scope}")
        self.scope = scope


# Scopes of a user-facing launch or of OpenID Connect: a backend service has no launch context,
# no user and no refresh token, so a request for them is narrowed away rather than refused
# (SMART Backend Services clients and libraries often send a fixed scope list).
_NOT_FOR_BACKEND_SERVICES = frozenset(
    {"launch", "openid", "fhirUser", "offline_access", "online_access", "profile"}
)


def _not_for_backend_services(token: str) -> bool:
    return token in _NOT_FOR_BACKEND_SERVICES or token.startswith("launch/")


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed `scope` parameter: the resource scopes to narrow, and the tokens set aside
    because they mean nothing here (not for backend services, or no such FHIR type)."""

    scopes: tuple[Scope, ...] = ()
    set_aside: tuple[str, ...] = ()


def parse_request(text: str | None) -> ScopeRequest:
    """Parse a `scope` parameter; a token that is neither a SMART resource scope nor one set
    aside is refused."""
    scopes: list[Scope] = []
    set_aside: list[str] = []
    for token in (text or "").split():
        scope = parse_scope(token)
        if scope is not None and names_a_resource_type(scope):
            scopes.append(scope)
        elif scope is not None or _not_for_backend_services(token):
            set_aside.append(token)
        else:
            raise ScopeRefused(token)
    return ScopeRequest(tuple(scopes), tuple(set_aside))


def intersect(requested: Scope, allowed: Scope) -> Scope | None:
    """The largest scope both cover, or None (`system/*.rs` ∩ `system/Task.cruds` → Task.rs)."""
    if requested.context != allowed.context and not (
        allowed.context == "system" and requested.context == "user"
    ):
        return None
    if requested.resource_type == "*":
        resource_type = allowed.resource_type
    elif allowed.resource_type in ("*", requested.resource_type):
        resource_type = requested.resource_type
    else:
        return None
    permissions = "".join(
        letter
        for letter in PERMISSION_ORDER
        if letter in requested.permissions and letter in allowed.permissions
    )
    if not permissions:
        return None
    if allowed.query is None:
        query = requested.query
    elif requested.query in (None, allowed.query):
        query = allowed.query
    else:
        return None
    return Scope(requested.context, resource_type, permissions, query)


def grant(
    request: ScopeRequest, allowed: Sequence[Scope], default: Sequence[Scope]
) -> tuple[Scope, ...]:
    """Narrow each requested scope to the allowed ones; no scope parameter means the defaults.

    A requested resource scope that shares nothing with the registration is refused as a
    whole (`invalid_scope`): dropping it would hide a misconfigured client. So is a request
    of which nothing remains once the tokens that mean nothing here are set aside.
    """
    if not request.scopes and request.set_aside:
        raise ScopeRefused(request.set_aside[0])
    if not request.scopes:
        fallback = default or allowed
        result = _minimal(scope for scope in fallback if names_a_resource_type(scope))
        if not result:
            raise ScopeRefused(" ".join(map(str, fallback)))
        return result
    granted: list[Scope] = []
    for scope in request.scopes:
        # A registration made before types were checked may allow `system/Foo.rs`.
        pieces = [
            piece
            for piece in (intersect(scope, ok) for ok in allowed)
            if piece and names_a_resource_type(piece)
        ]
        if not pieces:
            raise ScopeRefused(str(scope))
        granted.extend(pieces)
    result = _minimal(granted)
    # Belt and braces: whatever the narrowing did, never grant beyond the registration.
    for scope in result:
        if not any_satisfies(allowed, scope):
            raise ScopeRefused(str(scope))
    return result


def _minimal(scopes: Iterable[Scope]) -> tuple[Scope, ...]:
    """Drop duplicates and scopes another one in the set already covers, keeping order."""
    unique = list(dict.fromkeys(scopes))
    return tuple(
        scope
        for i, scope in enumerate(unique)
        if not any(j != i and satisfies(other, scope) and (not satisfies(scope, other) or j < i)
                   for j, other in enumerate(unique))
    )


def render(scopes: Iterable[Scope]) -> str:
    return " ".join(str(scope) for scope in scopes)
