"""Relay-style connections over the services' keyset pages (opaque cursors, capped size)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import strawberry

from api.services.pagination import Keyset, Page

Node = TypeVar("Node")
Item = TypeVar("Item")


@strawberry.type(description="Relay page information; cursors are opaque keyset positions.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def _cursor(root: Edge[Any]) -> str:
    # Encoded only when the operation selects it (most pages never read their cursors).
    position = root.position
    return position if isinstance(position, str) else position.encode()


@strawberry.type
class Edge(Generic[Node]):
    cursor: str = strawberry.field(resolver=_cursor)
    node: Node
    position: strawberry.Private[Keyset | str]


@strawberry.type
class Connection(Generic[Node]):
    edges: list[Edge[Node]]
    page_info: PageInfo

    @strawberry.field(description="The nodes of this page, without their cursors.")
    def nodes(self) -> list[Node]:
        return [edge.node for edge in self.edges]


def connection_from_page(
    page: Page[Item],
    node: Callable[[Item], Node],
    keyset: Callable[[Item], Keyset],
) -> Connection[Node]:
    return Connection(
        edges=[Edge(node=node(item), position=keyset(item)) for item in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )
