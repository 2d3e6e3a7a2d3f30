"""Federation `_entities`: each representation is checked before it reaches a
`resolve_reference`, so a bad one is refused alone (INVALID_INPUT naming it) while the others
still resolve. Every PeerBridge entity has the key `id`, a UUID."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any
from uuid import UUID

from api.domain.errors import Invalid

_KEYS = frozenset({"__typename", "id"})


def representation_problem(
    index: int, representation: Any, entity_types: Collection[str]
) -> Invalid | None:
    """Why this representation cannot be resolved, or None when it can."""
    where = f"representations[{index}]"
    if not isinstance(representation, dict):
        return Invalid("must be an object with __typename and id", field=where)
    type_name = representation.get("__typename")
    if not isinstance(type_name, str) or type_name not in entity_types:
        return Invalid(
            f"must name an entity type of this subgraph: {', '.join(sorted(entity_types))}",
            field=f"{where}.__typename",
        )
    if not set(representation) <= _KEYS:
        return Invalid(f"{type_name} is keyed by id alone", field=where)
    ident = representation.get("id")
    if ident is None:
        return Invalid("is required", field=f"{where}.id")
    if not isinstance(ident, str) or not _is_uuid(ident):
        return Invalid("is not a valid id", field=f"{where}.id")
    return None


def resolve_checked(
    representations: Sequence[Any],
    entity_types: Collection[str],
    resolve: Callable[[list[Any]], list[Any]],
) -> list[Any]:
    """`resolve` (strawberry's resolver) runs on the sound representations, in order; each
    unsound one answers its own error in its place (graphql-core reports it at its index)."""
    problems = [
        representation_problem(index, representation, entity_types)
        for index, representation in enumerate(representations)
    ]
    # Copies: strawberry pops `__typename` from what it is given.
    sound = [dict(r) for r, problem in zip(representations, problems, strict=True) if not problem]
    resolved = iter(resolve(sound))
    return [problem if problem is not None else next(resolved) for problem in problems]


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True
