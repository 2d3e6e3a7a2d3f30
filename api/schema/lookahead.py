"""Prefetching a page's relations: when an operation selects a relation under a connection,
the page loads it for all its nodes in one batch before the nodes resolve, and the nodes then
answer from the loader's cache without an await per node.

Fields under `@skip`/`@include` are never prefetched (their own resolvers load them, if run),
so nothing is read, or audited, that the operation does not return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar, cast

from strawberry.dataloader import DataLoader
from strawberry.types.nodes import SelectedField, Selection

from api.schema.context import Info

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


def selects(info: Info, *path: str) -> bool:
    """True when the current field selects `path` (field names, fragments looked through)."""
    return any(_selects(field.selections, path) for field in info.selected_fields)


def _selects(selections: Sequence[Selection], path: Sequence[str]) -> bool:
    for selection in selections:
        if selection.directives:
            continue
        if not isinstance(selection, SelectedField):
            if _selects(selection.selections, path):
                return True
        elif selection.name == path[0] and (
            len(path) == 1 or _selects(selection.selections, path[1:])
        ):
            return True
    return False


def prefetch(loader: DataLoader[K, V], keys: Iterable[K | None]) -> Awaitable[list[Any]]:
    """Load these keys in one batch; per-key errors stay in the loader for their fields."""
    wanted = list(dict.fromkeys(key for key in keys if key is not None))
    return asyncio.gather(*(loader.load(key) for key in wanted), return_exceptions=True)


def resolved(loader: DataLoader[K, V], key: K, convert: Callable[[V], T]) -> T:
    """The converted value at once when the loader already holds it, else an awaitable of it.

    Typed as `T` because GraphQL awaits whatever a resolver returns that is awaitable; the
    synchronous path saves a coroutine per node on prefetched pages.
    """
    future = loader.cache_map.get(key)
    if future is not None and future.done():
        return convert(future.result())  # raises the key's error, as an await would
    return cast(T, _later(loader, key, convert))


async def _later(loader: DataLoader[K, V], key: K, convert: Callable[[V], T]) -> T:
    return convert(await loader.load(key))
