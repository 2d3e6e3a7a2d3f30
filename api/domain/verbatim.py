"""Elements of a record's source documents kept exactly as a client sent them.

A door that receives a document (a FHIR ServiceRequest, say) models the elements the rules and
searches need and keeps the rest as sent, so every party reads back what was written. The domain
carries those elements without interpreting them, by document type (`{"ServiceRequest": {...}}`);
a disclosure that withholds a record's data withholds them too (`NOTHING_KEPT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

Verbatim = Mapping[str, Mapping[str, Any]]

NOTHING_KEPT: Verbatim = MappingProxyType({})


def kept_for(verbatim: Verbatim, document_type: str) -> Mapping[str, Any]:
    """The elements kept from the `document_type` source, or none."""
    return verbatim.get(document_type) or MappingProxyType({})


def with_kept(verbatim: Verbatim, document_type: str, elements: Mapping[str, Any]) -> Verbatim:
    """`verbatim` with the elements of one source document replaced."""
    return MappingProxyType({**verbatim, document_type: dict(elements)})


def nothing_kept() -> Verbatim:
    """`NOTHING_KEPT`, as a dataclass default (`field(default_factory=nothing_kept)`): a mapping
    proxy is unhashable, so dataclasses refuse it as a plain default."""
    return NOTHING_KEPT
