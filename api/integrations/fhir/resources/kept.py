"""Keep what a client sends: the elements a mapper does not model are stored as sent and laid
back over the mapper's output on read, so every party reads back what the clinic wrote.

Each mapper declares, in one `Keeping`, the elements it models (their truth is the record: a
Task's status, a reference re-pointed to our ids, the codes searches need) and the extension URLs
it interprets. Everything else — an identifier, a note, a US Core extension — is kept verbatim
(`api.domain.verbatim`). A modifier PeerBridge does not understand changes the meaning of the
rest, so the whole request is refused naming it. See https://hl7.org/fhir/R4/extensibility.html
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from api.domain.errors import Invalid, InvalidDetail
from api.integrations.fhir.resources.datatypes import Json

# id and meta are the server's; of meta, the client's profile claims and labels are kept beside
# the server's own (a dropped security label would change how the record must be handled).
_SERVER_ASSIGNED = frozenset({"resourceType", "id", "meta"})
_META_KEPT = ("profile", "tag", "security", "source")


@dataclass(frozen=True)
class Keeping:
    """What one resource type's mapper models; `split` keeps every other element verbatim."""

    resource_type: str
    owned: frozenset[str]
    extensions: frozenset[str] = frozenset()  # URLs the mapper reads (and writes back itself)
    modifier_extensions: frozenset[str] = frozenset()  # modifier URLs the rules honour

    def split(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """The elements to keep as sent; refuses modifiers PeerBridge cannot honour."""
        problems: list[InvalidDetail] = []
        _refuse_modifiers(resource, self.resource_type, self.modifier_extensions, problems)
        if "implicitRules" in resource:
            problems.append(
                InvalidDetail(
                    f"{self.resource_type}.implicitRules",
                    "PeerBridge cannot honour rules it does not know; send the resource without",
                )
            )
        if problems:
            raise Invalid(problems)
        kept: dict[str, Any] = {}
        for key, value in resource.items():
            if key == "meta" and isinstance(value, Mapping):
                labels = {k: value[k] for k in _META_KEPT if k in value}
                if labels:
                    kept["meta"] = labels
            elif key == "extension" and isinstance(value, list):
                others = [e for e in value if _url(e) not in self.extensions]
                if others:
                    kept["extension"] = others
            elif key not in _SERVER_ASSIGNED and key not in self.owned:
                kept[key] = value
        return kept


def merge(resource: Json, kept: Mapping[str, Any]) -> Json:
    """The mapper's output with the kept elements laid over it (kept ones are as sent)."""
    if not kept:
        return resource
    out = dict(resource)
    for key, value in kept.items():
        if key == "extension":
            out["extension"] = [*out.get("extension", ()), *value]
        elif key == "meta":
            out["meta"] = _merge_meta(out.get("meta") or {}, value)
        else:
            out[key] = value
    return out


def _merge_meta(server: Mapping[str, Any], client: Mapping[str, Any]) -> Json:
    meta = dict(server)
    for key, value in client.items():
        if isinstance(value, list):
            mine = list(meta.get(key, ()))
            meta[key] = mine + [item for item in value if item not in mine]
        else:
            meta.setdefault(key, value)
    return meta


def _url(extension: Any) -> Any:
    return extension.get("url") if isinstance(extension, Mapping) else None


def _refuse_modifiers(
    value: Any, path: str, understood: frozenset[str], problems: list[InvalidDetail]
) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "modifierExtension" and isinstance(item, list):
                for index, extension in enumerate(item):
                    if _url(extension) not in understood:
                        problems.append(
                            InvalidDetail(
                                f"{path}.modifierExtension[{index}]",
                                "PeerBridge does not understand this modifier extension, so it "
                                "cannot honour what it changes",
                            )
                        )
            else:
                _refuse_modifiers(item, f"{path}.{key}", understood, problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_modifiers(item, f"{path}[{index}]", understood, problems)
