"""Input checks beyond what fhir.resources enforces: JSON types (no `"yes"` for booleans),
empty values, unknown elements, required-binding codes. Reference targets and the invariants
we rely on are checked where the mappers read the elements (`ref_id`, `from_fhir_*`).

Every refusal names the element (`issue.expression`); none echoes a submitted value.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from pydantic import ValidationError

from api.domain.errors import InvalidDetail
from api.input_guard import parse_json as parse_guarded_json
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.rest.operation_outcomes import BadRequest

# Required bindings (R4) on the elements of the resources clients may send.
_REQUIRED_CODES: dict[str, frozenset[str]] = {
    "Patient.gender": frozenset({"male", "female", "other", "unknown"}),
    "Patient.telecom.system": frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"}),
    "Patient.identifier.use": frozenset({"usual", "official", "temp", "secondary", "old"}),
    "Patient.name.use": frozenset(
        {"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"}
    ),
    "Consent.status": frozenset(
        {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
    ),
    "Consent.provision.type": frozenset({"deny", "permit"}),
    "ServiceRequest.status": frozenset(
        {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
    ),
    "ServiceRequest.intent": frozenset(
        {
            "proposal", "plan", "directive", "order", "original-order", "reflex-order",
            "filler-order", "instance-order", "option",
        }
    ),
    "ServiceRequest.priority": frozenset({"routine", "urgent", "asap", "stat"}),
    "Task.status": frozenset(
        {
            "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
            "in-progress", "on-hold", "failed", "completed", "entered-in-error",
        }
    ),
    "Task.intent": frozenset(
        {
            "unknown", "proposal", "plan", "order", "original-order", "reflex-order",
            "filler-order", "instance-order", "option",
        }
    ),
    "Task.priority": frozenset({"routine", "urgent", "asap", "stat"}),
    "QuestionnaireResponse.status": frozenset(
        {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
    ),
    "Procedure.status": frozenset(
        {
            "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
            "entered-in-error", "unknown",
        }
    ),
    "DocumentReference.status": frozenset({"current", "superseded", "entered-in-error"}),
    "DocumentReference.docStatus": frozenset(
        {"preliminary", "final", "amended", "entered-in-error"}
    ),
    "Location.status": frozenset({"active", "suspended", "inactive"}),
    "Location.mode": frozenset({"instance", "kind"}),
    "Location.telecom.system": frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"}),
    "Location.telecom.use": frozenset({"home", "work", "temp", "old", "mobile"}),
    "Location.address.use": frozenset({"home", "work", "temp", "old", "billing"}),
    "Location.address.type": frozenset({"postal", "physical", "both"}),
    "Encounter.status": frozenset(
        {
            "planned", "arrived", "triaged", "in-progress", "onleave", "finished", "cancelled",
            "entered-in-error", "unknown",
        }
    ),
}  # fmt: skip

ACCEPTED_TYPES = (
    "Subscription",
    "Patient",
    "Consent",
    "DocumentReference",
    "ServiceRequest",
    "Task",
    "QuestionnaireResponse",
    "Encounter",
    "Procedure",
    "Location",
    "Bundle",
)


_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z]{0,63}")


def _element_root(body: Any) -> str:
    """Paths of refused strings start at the resource type, as FHIRPath does."""
    kind = body.get("resourceType") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) and _RESOURCE_TYPE.fullmatch(kind) else ""


def parse_json(raw: bytes, *, max_depth: int) -> Json:
    """The body through the input guard (depth, encoding, storable strings), as an object."""
    body = parse_guarded_json(raw, max_depth=max_depth, root=_element_root)
    if not isinstance(body, dict):
        raise BadRequest("the body is not a FHIR resource (JSON object)")
    return body


def _model(resource_type: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def _walk_empty(value: Any, path: str, problems: list[InvalidDetail]) -> None:
    if value is None or value in ("", [], {}):
        problems.append(InvalidDetail(path, "FHIR forbids null and empty values"))
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk_empty(item, f"{path}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk_empty(item, f"{path}[{index}]", problems)


def _walk_types(given: Any, shaped: Any, path: str, problems: list[InvalidDetail]) -> None:
    """Lax parsing turned `"yes"` into True or `"1"` into 1: refuse the JSON type it fixed."""
    if isinstance(given, dict) and isinstance(shaped, dict):
        for key, item in given.items():
            if key in shaped:
                _walk_types(item, shaped[key], f"{path}.{key}", problems)
    elif isinstance(given, list) and isinstance(shaped, list):
        for index, (a, b) in enumerate(zip(given, shaped, strict=False)):
            _walk_types(a, b, f"{path}[{index}]", problems)
    elif isinstance(shaped, bool) and not isinstance(given, bool):
        problems.append(InvalidDetail(path, "must be a JSON boolean"))
    elif isinstance(shaped, int | float) and not isinstance(given, int | float):
        problems.append(InvalidDetail(path, "must be a JSON number"))
    elif isinstance(given, bool | int | float) and isinstance(shaped, str):
        problems.append(InvalidDetail(path, "must be a JSON string"))


def _walk_codes(value: Any, path: str, bare: str, problems: list[InvalidDetail]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _walk_codes(item, f"{path}.{key}", f"{bare}.{key}", problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk_codes(item, f"{path}[{index}]", bare, problems)
    elif bare in _REQUIRED_CODES and value not in _REQUIRED_CODES[bare]:
        problems.append(InvalidDetail(path, "not a code of the required value set"))


def _loc(resource_type: str, loc: tuple[int | str, ...]) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.replace(".__root__", "")


def check_resource(resource: Json, expected: str | None = None) -> Json:
    """Refuse what R4 refuses; return the resource as given (for the mappers to read)."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or resource_type not in ACCEPTED_TYPES:
        raise BadRequest("unsupported or missing resourceType", field="resourceType")
    if expected is not None and resource_type != expected:
        raise BadRequest(f"expected a {expected}", field="resourceType")
    problems: list[InvalidDetail] = []
    _walk_empty(resource, resource_type, problems)
    if problems:
        raise BadRequest(problems)
    try:
        shaped = (
            _model(resource_type)
            .model_validate(resource)
            .model_dump(mode="json", by_alias=True, exclude_none=True)
        )
    except ValidationError as error:
        raise BadRequest(
            [
                InvalidDetail(
                    _loc(resource_type, tuple(e["loc"])),
                    "unknown element" if e["type"] == "extra_forbidden" else e["msg"],
                )
                for e in error.errors(include_input=False, include_url=False)
            ]
        ) from None
    _walk_types(resource, shaped, resource_type, problems)
    _walk_codes(resource, resource_type, resource_type, problems)
    if problems:
        raise BadRequest(problems)
    return resource
