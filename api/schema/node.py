"""The `Node` interface every entity implements: fetch anything by its id."""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a stable id (the record's UUID).")
class Node:
    id: strawberry.ID
