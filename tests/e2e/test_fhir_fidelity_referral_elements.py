"""Property: a ServiceRequest or Task with any subset of its R4 elements is either refused with
an OperationOutcome naming an element (or the party that may not do it), or read back with
every element as sent. The elements come from the R4B models; their values from a small table
of datatypes."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from fhir_support import Fhir
from fidelity import differences
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from network import Network

Json = dict[str, Any]
SNOMED = "http://snomed.info/sct"
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Elements the server assigns or that need a test of their own.
_SKIPPED = {"fhir_comments", "id", "meta", "contained"}
# Codes of required bindings (others are refused 400 naming the element, also a valid outcome).
_CODES = {
    "status": ["active", "draft", "requested", "accepted", "completed"],
    "intent": ["order", "plan", "proposal"],
    "priority": ["routine", "urgent", "asap", "stat"],
    "language": ["en", "es"],
}

text = (
    st.text(
        st.characters(codec="utf-8", categories=("L", "N", "Zs"), max_codepoint=0x24F),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)
token = st.from_regex(r"\A[a-z][a-z0-9\-]{0,12}\Z")
uri = st.sampled_from(["http://example.org/cs", "urn:oid:1.2.3.4", SNOMED])
date_time = st.sampled_from(
    ["2026", "2026-11", "2026-11-20", "2026-11-20T09:15:00Z", "2026-11-20T09:15:00.25-05:00"]
)
coding = st.fixed_dictionaries({"system": uri, "code": token}, optional={"display": text})
concept = st.fixed_dictionaries(
    {"coding": st.lists(coding, min_size=1, max_size=2)}, optional={"text": text}
)
quantity = st.fixed_dictionaries({"value": st.integers(0, 99)}, optional={"unit": text})


def _reference(targets: list[str], ours: dict[str, list[str]]) -> st.SearchStrategy[Json]:
    """`Type/id` of an allowed target: one of ours when we hold that type, else a foreign id."""

    def build(kind: str) -> st.SearchStrategy[str]:
        ids = ours.get(kind) or [f"ext-{n}" for n in range(3)] + [str(uuid.UUID(int=7))]
        return st.sampled_from(ids).map(lambda ident: f"{kind}/{ident}")

    kinds = [t for t in targets if t != "Resource"] or ["Condition", "Observation"]
    return st.fixed_dictionaries(
        {"reference": st.sampled_from(kinds).flatmap(build)}, optional={"display": text}
    )


_DATATYPES: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "CodeableConceptType": lambda: concept,
    "IdentifierType": lambda: st.fixed_dictionaries({"value": text}, optional={"system": uri}),
    "AnnotationType": lambda: st.fixed_dictionaries({"text": text}, optional={"time": date_time}),
    "PeriodType": lambda: st.one_of(
        st.fixed_dictionaries({"start": date_time}), st.fixed_dictionaries({"end": date_time})
    ),
    "QuantityType": lambda: quantity,
    "RangeType": lambda: st.fixed_dictionaries({"low": quantity}),
    "RatioType": lambda: st.fixed_dictionaries({"numerator": quantity, "denominator": quantity}),
    "TimingType": lambda: st.just({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}),
    "NarrativeType": lambda: text.map(
        lambda t: {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{t}</div>',
        }
    ),
    "ExtensionType": lambda: st.fixed_dictionaries(
        {"url": st.sampled_from(["https://clinic.example.org/ext/a", "http://example.org/b"])},
        optional={"valueString": text},
    ).filter(lambda e: "valueString" in e),
    "TaskInputType": lambda: st.fixed_dictionaries({"type": concept, "valueString": text}),
    "TaskOutputType": lambda: st.fixed_dictionaries({"type": concept, "valueString": text}),
    "TaskRestrictionType": lambda: st.just({"repetitions": 1}),
    "DateTime()": lambda: date_time,
    "Canonical()": lambda: st.just("http://example.org/fhir/PlanDefinition/peer-group"),
    "Uri()": lambda: st.just("http://example.org/fhir/rules/1"),
    "String()": lambda: text,
    "bool": st.booleans,
}


def _element_strategies(
    model: type[Any], ours: dict[str, list[str]]
) -> dict[str, st.SearchStrategy[tuple[str, Any]]]:
    """Each element of the model with a strategy for (its JSON name, a value); a choice type
    (`occurrence[x]`) is one element whose variant is drawn too."""
    variants: dict[str, list[st.SearchStrategy[tuple[str, Any]]]] = {}
    for name, info in model.model_fields.items():
        if name.endswith("__ext") or name in _SKIPPED:
            continue
        alias = info.alias or name
        described = str(info.annotation)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "ReferenceType" in described:
            one = _reference(list(extra.get("enum_reference_types") or []), ours)
        elif "Code()" in described:
            one = st.sampled_from(_CODES.get(alias, ["x-unknown"]))
        else:
            kind = next((k for k in _DATATYPES if k in described), None)
            assert kind is not None, f"no strategy for {model.__name__}.{alias}: {described}"
            one = _DATATYPES[kind]()
        values = st.lists(one, min_size=1, max_size=2) if "List[" in described else one
        element = str(extra.get("one_of_many") or alias)
        variants.setdefault(element, []).append(st.tuples(st.just(alias), values))
    return {element: st.one_of(found) for element, found in variants.items()}


def _draw_elements(
    data: st.DataObject, elements: dict[str, st.SearchStrategy[tuple[str, Any]]]
) -> Json:
    names = data.draw(st.sets(st.sampled_from(sorted(elements)), max_size=8), label="elements")
    return dict(data.draw(elements[name], label=name) for name in sorted(names))


def _ours(network: Network) -> dict[str, list[str]]:
    return {
        "Patient": [str(network.patient.id)],
        "Organization": [str(network.clinic.id), str(network.peer.id)],
        "Consent": [str(network.consent.id)],
        "HealthcareService": [str(network.program.id)],
    }


def _refused_well(response: httpx.Response, resource_type: str) -> bool:
    """A refusal names an element, or (403) says which party may not do it."""
    outcome = response.json()
    if outcome.get("resourceType") != "OperationOutcome":
        return False
    if response.status_code == 403:
        return True
    expressions = [x for issue in outcome["issue"] for x in issue.get("expression", ())]
    return (
        response.status_code in (400, 422)
        and bool(expressions)
        and all(x.startswith(f"{resource_type}.") for x in expressions)
    )


def _with_elements(base: Json, drawn: dict[str, Any]) -> Json:
    resource = copy.deepcopy(base)
    resource.update(copy.deepcopy(drawn))
    return resource


async def _check(fhir: Fhir, resource: Json, path: str) -> None:
    response = await fhir.request("POST", path, resource)
    event(f"answered {response.status_code}")
    if response.status_code == 201:
        created = response.json()
        assert not differences(resource, created), differences(resource, created)
        read = await fhir.ok("GET", f"{path}/{created['id']}")
        assert not differences(resource, read), differences(resource, read)
    else:
        assert _refused_well(response, path), (response.status_code, response.text)


@EXAMPLES
@given(data=st.data())
async def test_any_service_request_is_kept_or_refused_naming_an_element(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, data: st.DataObject
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    drawn = _draw_elements(data, _element_strategies(ServiceRequest, _ours(network)))
    base = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": SNOMED, "code": "461481000124109"}]},
        "subject": {"reference": f"Patient/{network.patient.id}"},
        "performer": [{"reference": f"Organization/{network.peer.id}"}],
    }
    await _check(clinic, _with_elements(base, drawn), "ServiceRequest")


@EXAMPLES
@given(data=st.data())
async def test_any_task_is_kept_or_refused_naming_an_element(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, data: st.DataObject
) -> None:
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    order = await clinic.ok(
        "POST",
        "ServiceRequest",
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "code": {"coding": [{"system": SNOMED, "code": "461481000124109"}]},
            "subject": {"reference": f"Patient/{network.patient.id}"},
            "performer": [{"reference": f"Organization/{network.peer.id}"}],
        },
    )
    ours = {**_ours(network), "ServiceRequest": [order["id"]]}
    drawn = _draw_elements(data, _element_strategies(Task, ours))
    base = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": {"reference": f"ServiceRequest/{order['id']}"},
    }
    await _check(clinic, _with_elements(base, drawn), "Task")
