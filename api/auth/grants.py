"""Which scopes a token gets: the request narrowed to the client's registration (RFC 6749 3.3).

Authentication's share of scopes only; what each scope lets a caller do is the services policy's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from api.domain.scopes import PERMISSION_ORDER, Scope, any_satisfies, parse_scope, satisfies


class ScopeRefused(Exception):
    """The request names a scope that is malformed or that the client was never allowed."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"scope not allowed for this client: {scope}")
        self.scope = scope


def parse_request(text: str | None) -> list[Scope]:
    """Parse a `scope` parameter; any token that is not a SMART resource scope is refused."""
    scopes = []
    for token in (text or "").split():
        scope = parse_scope(token)
        if scope is None:
            raise ScopeRefused(token)
        scopes.append(scope)
    return scopes


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
    requested: Sequence[Scope], allowed: Sequence[Scope], default: Sequence[Scope]
) -> tuple[Scope, ...]:
    """Narrow each requested scope to the allowed ones; none requested means the defaults.

    A requested scope that shares nothing with the registration is refused as a whole
    (`invalid_scope`): silently dropping it would hide a misconfigured client.
    """
    if not requested:
        return _minimal(default or allowed)
    granted: list[Scope] = []
    for scope in requested:
        pieces = [piece for piece in (intersect(scope, ok) for ok in allowed) if piece]
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
