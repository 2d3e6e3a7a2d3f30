"""SMART on FHIR v2 scope grammar: `(patient|user|system)/(Type|*).[c][r][u][d][s][?param=value]`.

See https://build.fhir.org/ig/HL7/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from api.domain.resource_types import FHIR_R4_RESOURCE_TYPES

_V2 = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)"
    r"\.(?P<perms>c?r?u?d?s?)(?:\?(?P<query>[^\s]+))?"
)
_V1 = re.compile(
    r"^(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<v1>read|write|\*)$"
)
_V1_ALIASES = {"read": "rs", "write": "cud", "*": "cruds"}
PERMISSION_ORDER = "cruds"


@dataclass(frozen=True)
class Scope:
    """A parsed SMART v2 resource scope."""

    context: str
    resource_type: str
    permissions: str
    query: str | None = None

    def __str__(self) -> str:
        text = f"{self.context}/{self.resource_type}.{self.permissions}"
        return f"{text}?{self.query}" if self.query else text


def parse_scope(text: str) -> Scope | None:
    """Parse one scope; None when it is not a SMART resource scope (e.g. `openid`)."""
    match = _V2.fullmatch(text)
    if match and match["perms"]:
        return Scope(match["context"], match["type"], match["perms"], match["query"])
    match = _V1.fullmatch(text)
    if match:
        return Scope(match["context"], match["type"], _V1_ALIASES[match["v1"]])
    return None


def names_a_resource_type(scope: Scope) -> bool:
    """True for `*` and the FHIR R4 resource types; `system/Foo.rs` grammatically is a scope
    but names nothing."""
    return scope.resource_type == "*" or scope.resource_type in FHIR_R4_RESOURCE_TYPES


def reordered(text: str) -> str | None:
    """`text` with its permission letters in SMART v2 order (`Task.rsu` → `Task.rus`), when
    only their order kept it from parsing; else None."""
    head, dot, tail = text.rpartition(".")
    letters, question, query = tail.partition("?")
    ordered = "".join(letter for letter in PERMISSION_ORDER if letter in letters)
    if not dot or ordered == letters or sorted(ordered) != sorted(letters):
        return None
    candidate = f"{head}.{ordered}{question}{query}"
    return candidate if parse_scope(candidate) is not None else None


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    return tuple(scope for scope in map(parse_scope, texts) if scope is not None)


def satisfies(granted: Scope, needed: Scope) -> bool:
    """True when `granted` allows everything `needed` asks for.

    Wildcard types cover every type; `system` scopes are not implied by `user` or `patient`
    ones and vice versa, except that `system` (a backend acting for its organization) covers
    `user` needs. A granted scope restricted by `?param=value` only covers needs with the
    same restriction.
    """
    if granted.context != needed.context and not (
        granted.context == "system" and needed.context == "user"
    ):
        return False
    if granted.resource_type not in ("*", needed.resource_type):
        return False
    if not set(needed.permissions) <= set(granted.permissions):
        return False
    return granted.query is None or granted.query == needed.query


def any_satisfies(granted: Iterable[Scope], needed: Scope) -> bool:
    return any(satisfies(scope, needed) for scope in granted)


def narrow(requested: Iterable[Scope], allowed: Iterable[Scope]) -> tuple[Scope, ...]:
    """The requested scopes the allowed set covers, each as requested (RFC 6749 3.3)."""
    allowed = tuple(allowed)
    return tuple(scope for scope in requested if any_satisfies(allowed, scope))
