"""The fidelity rule as a property, for Consent, DocumentReference, Procedure and
QuestionnaireResponse: a valid resource plus a random subset of the type's optional elements
(names from the R4B models, values from a small table per datatype) is either refused with an
OperationOutcome naming an element, or read back (read and search) as it was sent."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.resource import Resource
from fhir_flows import consent_form
from fhir_support import Fhir, entries
from fidelity_support import differences, expressions
from hypothesis import given, settings
from hypothesis import strategies as st
from network import Network
from records_samples import consent, response, scored

from api.domain.outcomes import Instrument
from api.domain.referrals import Transition
from api.services import referrals
from api.services.referrals import CreateReferral

EXAMPLES = 30
Json = dict[str, Any]

_text = st.text(st.characters(codec="utf-8", categories=("L", "N", "Zs")), min_size=1, max_size=20)
_text = _text.map(str.strip).filter(bool)
_code = st.from_regex(r"\A[a-z][a-z0-9\-]{0,10}\Z")
_past = st.sampled_from(
    ["2025", "2025-03", "2025-03-04", "2025-03-04T10:15:00Z", "2025-03-04T10:15:00.25-04:00"]
)
_ids = st.uuids().map(str)


def _reference(types: list[str]) -> st.SearchStrategy[Json]:
    return st.builds(
        lambda kind, ident, display: {"reference": f"{kind}/{ident}", **display},
        st.sampled_from(types or ["Basic"]),
        _ids,
        st.sampled_from([{}, {"display": "someone"}]),
    )


_coding = st.builds(
    lambda code, display: {"system": "http://example.org/cs", "code": code, **display},
    _code,
    st.sampled_from([{}, {"display": "a display"}]),
)
_concept = st.builds(
    lambda codings, text: {"coding": codings, **text},
    st.lists(_coding, min_size=1, max_size=2),
    st.sampled_from([{}, {"text": "as the clinic wrote it"}]),
)
_period = st.sampled_from([{"start": "2025-03-04"}, {"start": "2025-03-04", "end": "2025-03-05"}])
_quantity = st.just({"value": 3, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"})
_extension = st.builds(
    lambda name, value: {"url": f"http://example.org/fhir/StructureDefinition/{name}", **value},
    _code,
    st.one_of(
        _text.map(lambda t: {"valueString": t}),
        st.booleans().map(lambda b: {"valueBoolean": b}),
        _concept.map(lambda c: {"valueCodeableConcept": c}),
    ),
)
_attachment = st.builds(
    lambda data, title: {"contentType": "application/pdf", "data": data, "title": title},
    st.binary(min_size=1, max_size=64).map(lambda b: base64.b64encode(b).decode()),
    _text,
)
_div = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Written by the clinic</p></div>'

# Datatype (as the R4B models name it) → values a client might send.
DATATYPES: dict[str, Callable[[list[str]], st.SearchStrategy[Any]]] = {
    "String": lambda _: _text,
    "Code": lambda values: st.sampled_from(values) if values else _code,
    "Uri": lambda _: st.just("http://example.org/rules/1"),
    "Canonical": lambda _: st.just("http://example.org/fhir/PlanDefinition/peer-support"),
    "Id": lambda _: _ids,
    "DateTime": lambda _: _past,
    "Instant": lambda _: st.just("2025-03-04T10:15:00.125+01:00"),
    "CodeableConcept": lambda _: _concept,
    "Coding": lambda _: _coding,
    "Identifier": lambda _: st.builds(lambda v: {"system": "urn:example:ids", "value": v}, _text),
    "Reference": _reference,
    "Period": lambda _: _period,
    "Annotation": lambda _: st.builds(lambda t: {"text": t, "time": "2025-03-04"}, _text),
    "Attachment": lambda _: _attachment,
    "Narrative": lambda _: st.just({"status": "generated", "div": _div}),
    "Extension": lambda _: _extension,
    "Age": lambda _: _quantity,
    "Range": lambda _: st.just({"low": {"value": 1}, "high": {"value": 2}}),
    "ConsentPolicy": lambda _: st.just({"authority": "http://example.org", "uri": "http://example.org/policy"}),  # noqa: E501
    "ConsentVerification": lambda _: st.just({"verified": True, "verificationDate": "2025-03-04"}),  # noqa: E501
    "ProcedurePerformer": lambda _: _reference(["Practitioner", "Organization"]).map(
        lambda r: {"actor": r}
    ),
    "ProcedureFocalDevice": lambda _: _reference(["Device"]).map(lambda r: {"manipulated": r}),
    "DocumentReferenceRelatesTo": lambda _: _reference(["DocumentReference"]).map(
        lambda r: {"code": "appends", "target": r}
    ),
    "DocumentReferenceContext": lambda _: st.builds(
        lambda p, c: {"period": p, "facilityType": c}, _period, _concept
    ),
}
# The server's own, or not an element a client sends on its own.
_NOT_SENT = frozenset({"id", "meta", "contained", "fhir_comments"})


def _datatype(annotation: str) -> str | None:
    found = re.search(r"abc\.(\w+)Type", annotation) or re.search(
        r"Annotated\[[\w.]+, (\w+)\(\)\]", annotation
    )
    return found.group(1) if found else None


def optional_elements(model: type[Resource], sent: Json) -> dict[str, st.SearchStrategy[Any]]:
    """Each element of the type not already in `sent`, with values of its datatype."""
    out = {}
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        kind = _datatype(str(field.annotation))
        alias = field.alias or name
        if not extra.get("element_property") or alias in _NOT_SENT or alias in sent:
            continue
        if kind not in DATATYPES:
            continue
        values = DATATYPES[kind](list(extra.get("enum_values") or extra.get("enum_reference_types") or []))  # type: ignore[arg-type]  # noqa: E501
        out[alias] = st.lists(values, min_size=1, max_size=2) if "List[" in str(field.annotation) else values  # noqa: E501
    return out


def samples(model: type[Resource], base: Json) -> list[Json]:
    """`base` with random subsets of the model's optional elements (a fixed budget)."""
    elements = optional_elements(model, base)
    names = sorted(elements)
    out: list[Json] = []

    @settings(max_examples=EXAMPLES, database=None, derandomize=True, deadline=None)
    @given(st.data())
    def collect(data: st.DataObject) -> None:
        chosen = data.draw(st.sets(st.sampled_from(names), min_size=1, max_size=5))
        out.append({**base, **{n: data.draw(elements[n], label=n) for n in sorted(chosen)}})

    collect()
    return out


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def _worked_referral(network: Network) -> str:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    for move in (Transition.ACCEPT, Transition.START):
        view = await referrals.transition_referral(
            network.uow(), network.as_peer, view.referral.id, move
        )
    return str(view.referral.id)


async def _check(
    who: Fhir,
    sent: Json,
    search: str,
    *,
    references: tuple[str, ...],
    derived: tuple[str, ...],
) -> bool:
    """Refused naming an element, or read back (read and search) as sent; True if kept."""
    kind = sent["resourceType"]
    answer = await who.request("POST", kind, sent)
    if answer.status_code != 201:
        assert answer.status_code in (400, 413, 422), (sent, answer.text)
        named = expressions(answer.json())
        assert named and all(n.startswith(kind) for n in named), (sent, answer.text)
        return False
    created = answer.json()
    read = await who.ok("GET", f"{kind}/{created['id']}")
    (found,) = [r for r in entries(await who.ok("GET", search)) if r["id"] == created["id"]]
    for copy in (created, read, found):
        problems = differences(sent, copy, references=references, derived=derived)
        assert not problems, (sent, problems)
    return True


def _kept_some(outcomes: list[bool]) -> None:
    """The property held both ways: most samples were kept, some refused."""
    assert sum(outcomes) >= len(outcomes) // 3, outcomes


async def test_consents_are_kept_or_refused_naming_the_element(
    network: Network, clinic: Fhir
) -> None:
    base = consent(network)
    for key in ("identifier", "performer", "organization", "sourceAttachment", "verification",
                "dateTime", "meta"):  # fmt: skip
        del base[key]
    search = f"Consent?patient=Patient/{network.patient.id}"
    outcomes = [
        await _check(
            clinic,
            sent,
            search,
            references=("patient", "organization", "sourceReference"),
            derived=("organization", "dateTime"),
        )
        for sent in samples(Consent, base)
    ]
    _kept_some(outcomes)


async def test_consent_forms_are_kept_or_refused_naming_the_element(
    network: Network, clinic: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    outcomes = [
        await _check(
            clinic,
            sent,
            f"DocumentReference?patient={patient}",
            references=("subject", "custodian"),
            derived=("custodian", "author", "date", "docStatus"),
        )
        for sent in samples(DocumentReference, consent_form(patient))
    ]
    _kept_some(outcomes)


async def test_procedures_are_kept_or_refused_naming_the_element(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _worked_referral(network)
    base: Json = {
        "resourceType": "Procedure",
        "basedOn": [{"reference": f"ServiceRequest/{referral_id}"}],
        "status": "completed",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "711281004"}]},
        "subject": {"reference": f"Patient/{network.patient.id}"},
    }
    outcomes = [
        await _check(
            peer,
            sent,
            f"Procedure?based-on=ServiceRequest/{referral_id}",
            references=("basedOn", "subject", "performer"),
            derived=("performer", "extension"),
        )
        for sent in samples(Procedure, base)
    ]
    _kept_some(outcomes)


async def test_questionnaire_responses_are_kept_or_refused_naming_the_element(
    network: Network, peer: Fhir
) -> None:
    await _worked_referral(network)  # the patient is in the peer organization's care
    base = response(
        network, "http://loinc.org/q/69737-5", scored(Instrument.GAD7, [0, 1, 2, 3, 0, 1, 2])
    )
    for key in ("identifier", "authored", "source"):
        del base[key]
    outcomes = [
        await _check(
            peer,
            sent,
            f"QuestionnaireResponse?patient=Patient/{network.patient.id}",
            references=("subject", "author", "basedOn"),
            derived=("author", "authored"),
        )
        for sent in samples(QuestionnaireResponse, base)
    ]
    _kept_some(outcomes)


def test_the_samples_reach_most_of_each_type() -> None:
    """The datatype table covers the elements a client may send of each type."""
    for model in (Consent, DocumentReference, Procedure, QuestionnaireResponse):
        sendable = [
            name
            for name, field in model.model_fields.items()
            if isinstance(field.json_schema_extra, dict)
            and field.json_schema_extra.get("element_property")
            and (field.alias or name) not in _NOT_SENT
        ]
        covered = optional_elements(model, {})
        assert len(covered) >= len(sendable) - 1, (model.__name__, set(sendable) - set(covered))
