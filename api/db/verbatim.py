"""A record's verbatim elements (`api.domain.verbatim`) in its `verbatim jsonb` column (0004).

The pool's codec decodes jsonb to dicts and encodes plain dicts; records carry them read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from api.domain.verbatim import Verbatim


def verbatim_json(verbatim: Verbatim) -> dict[str, dict[str, Any]]:
    """A record's verbatim elements as a jsonb parameter."""
    return {document: dict(elements) for document, elements in verbatim.items()}


def verbatim_of(stored: Mapping[str, Any]) -> Verbatim:
    """The verbatim elements read from the column, read-only."""
    return MappingProxyType({document: dict(elements) for document, elements in stored.items()})
