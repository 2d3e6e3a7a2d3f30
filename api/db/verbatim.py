"""A record's verbatim elements (`api.domain.verbatim`) in its `verbatim jsonb` column (0004).

The pool's codec decodes jsonb to dicts on the way out; on the way in it needs plain dicts.
"""

from __future__ import annotations

from typing import Any

from api.domain.verbatim import Verbatim


def verbatim_json(verbatim: Verbatim) -> dict[str, Any]:
    """A record's verbatim elements as a jsonb parameter."""
    return {document: dict(elements) for document, elements in verbatim.items()}
