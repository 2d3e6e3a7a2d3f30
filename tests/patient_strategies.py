"""Hypothesis strategies for FHIR Patients with random subsets of their optional elements.

The element names come from the R4B model (`Patient.model_fields`, by alias), their values
from one small strategy per datatype, so a new element in the model fails `element_types`
until it has a strategy here.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cache
from typing import Any

from fhir.resources.R4B.patient import Patient as R4BPatient
from hypothesis import strategies as st

Json = dict[str, Any]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
_XHTML = "http://www.w3.org/1999/xhtml"
_BCP47 = "urn:ietf:bcp:47"

# Not generated: the server's (id), a comment holder, and contained resources (none of ours).
SKIPPED = frozenset({"fhir_comments", "id", "contained"})
# Elements a clinic seldom sends that PeerBridge refuses: drawn rarely so most examples pass.
RARE = frozenset({"implicitRules", "modifierExtension", "_implicitRules", "link"})

_LETTER = "A-Za-zÁéñöçß中文'.\\-"
_words = st.from_regex(rf"\A[{_LETTER}]([{_LETTER} ]{{0,14}}[{_LETTER}])?\Z")
_code = st.from_regex(r"\A[a-z][a-z0-9\-]{0,8}\Z")
_uri = st.sampled_from(["http://snomed.info/sct", "urn:oid:1.2.3.4", "https://ehr.example.org/cs"])
_day = st.dates(date(1900, 1, 1), date(2020, 12, 31)).map(lambda d: d.isoformat())
_date = st.one_of(_day, _day.map(lambda d: d[:4]), _day.map(lambda d: d[:7]))
_date_time = st.one_of(_date, _day.map(lambda d: f"{d}T08:30:00+02:00"))
_period = st.fixed_dictionaries({}, optional={"start": _date_time, "end": _date_time}).filter(
    lambda p: "start" not in p or "end" not in p or p["start"][:4] <= p["end"][:4]
)


def _optional(required: dict[str, Any], **optional: st.SearchStrategy[Any]) -> Any:
    return st.fixed_dictionaries(required, optional=optional).filter(bool)


_coding = _optional({}, system=_uri, code=_code, display=_words)
_concept = _optional({}, coding=st.lists(_coding, min_size=1, max_size=2), text=_words)
_reference = _optional(
    {},
    reference=st.sampled_from(["Practitioner/ehr-1", "Organization/ehr-2", "PractitionerRole/r"]),
    display=_words,
)
_extension = st.one_of(
    st.fixed_dictionaries(
        {"url": st.just(f"{US_CORE}/us-core-birthsex"), "valueCode": st.sampled_from(["F", "M"])}
    ),
    st.fixed_dictionaries({"url": st.just("https://ehr.example.org/x"), "valueString": _words}),
    st.fixed_dictionaries(
        {
            "url": st.just(f"{US_CORE}/us-core-race"),
            "extension": st.just([{"url": "text", "valueString": "Declined"}]),
        }
    ),
)
_human_name = _optional(
    {},
    use=st.sampled_from(["usual", "official", "temp", "nickname", "anonymous", "old", "maiden"]),
    text=_words,
    family=_words,
    given=st.lists(_words, min_size=1, max_size=3),
    prefix=st.lists(_words, min_size=1, max_size=2),
    suffix=st.lists(_words, min_size=1, max_size=2),
    period=_period.filter(bool),
)
_current_name = st.fixed_dictionaries(
    {"family": _words, "given": st.lists(_words, min_size=1, max_size=3)},
    optional={
        "use": st.sampled_from(["usual", "official", "temp"]),
        "prefix": st.lists(_words, min_size=1, max_size=2),
        "period": st.fixed_dictionaries({"start": _date_time}),
    },
)
_contact_point = st.fixed_dictionaries(
    {
        "system": st.sampled_from(["phone", "fax", "email", "pager", "url", "sms", "other"]),
        "value": _words,
    },
    optional={
        "use": st.sampled_from(["home", "work", "temp", "old", "mobile"]),
        "rank": st.integers(1, 5),
        "period": _period.filter(bool),
    },
)
_address = _optional(
    {},
    use=st.sampled_from(["home", "work", "temp", "old", "billing"]),
    type=st.sampled_from(["postal", "physical", "both"]),
    text=_words,
    line=st.lists(_words, min_size=1, max_size=2),
    city=_words,
    state=_words,
    postalCode=_words,
    country=_words,
    period=_period.filter(bool),
)
# Values made unique per example by the test (identifiers are unique per organization).
_identifier = st.fixed_dictionaries(
    {"system": _uri, "value": _code},
    optional={
        "use": st.sampled_from(["usual", "official", "temp", "secondary", "old"]),
        "type": _concept,
        "period": _period.filter(bool),
        "assigner": _reference,
    },
)

DATATYPES: dict[str, st.SearchStrategy[Any]] = {
    "Boolean": st.booleans(),
    "Code": _code,
    "Date": _date,
    "DateTime": _date_time,
    "Integer": st.integers(1, 4),
    "Uri": _uri,
    "PrimitiveExtension": st.fixed_dictionaries(
        {"extension": st.lists(_extension, min_size=1, max_size=1)}
    ),
    "Meta": _optional(
        {},
        profile=st.just([f"{US_CORE}/us-core-patient"]),
        tag=st.lists(_coding, min_size=1, max_size=1),
    ),
    "Narrative": st.builds(
        lambda words: {"status": "generated", "div": f'<div xmlns="{_XHTML}">{words}</div>'},
        st.from_regex(r"\A[a-z ]{1,20}\Z"),
    ),
    "Extension": _extension,
    "HumanName": _human_name,
    "ContactPoint": _contact_point,
    "Address": _address,
    "Identifier": _identifier,
    "CodeableConcept": _concept,
    "Reference": _reference,
    "Attachment": _optional(
        {},
        contentType=st.just("image/png"),
        url=st.just("https://ehr.example.org/p.png"),
        title=_words,
    ),
    "PatientCommunication": st.fixed_dictionaries(
        {
            "language": _optional(
                {}, coding=st.just([{"system": _BCP47, "code": "es"}]), text=_words
            )
        },
        optional={"preferred": st.booleans()},
    ),
    "PatientContact": _optional(
        {},
        relationship=st.lists(_concept, min_size=1, max_size=1),
        name=_human_name,
        telecom=st.lists(_contact_point, min_size=1, max_size=2),
        address=_address,
        gender=st.sampled_from(["male", "female", "other", "unknown"]),
        period=_period.filter(bool),
    ),
    "PatientLink": st.fixed_dictionaries(
        {
            "other": st.just({"reference": "Patient/ehr-9"}),
            "type": st.sampled_from(["replaced-by", "replaces", "refer", "seealso"]),
        }
    ),
}
# Elements whose codes come from a required value set narrower than their datatype's.
ELEMENTS: dict[str, st.SearchStrategy[Any]] = {
    "gender": st.sampled_from(["male", "female", "other", "unknown"]),
    "language": st.sampled_from(["en", "es", "en-US"]),
    "managingOrganization": st.sampled_from(["own", "own", "own", "other"]),  # filled by the test
    "active": st.sampled_from([True, True, True, False]),  # false is refused: keep most examples
}

_NAMED = re.compile(r"abc\.(?:FHIR)?(\w+?)Type|Annotated\[[\w.]+, (\w+)\(|^(bool)\b")


@cache
def element_types() -> dict[str, tuple[str, bool, str | None]]:
    """JSON name → (datatype, repeats, choice group) for every Patient element generated."""
    out = {}
    for name, field in R4BPatient.model_fields.items():
        alias = field.alias or name
        if alias in SKIPPED:
            continue
        text = str(field.annotation).replace("typing.", "")
        found = _NAMED.search(text)
        assert found, f"no datatype for Patient.{alias}: {text}"
        datatype = next(g for g in found.groups() if g)
        datatype = {"bool": "Boolean"}.get(datatype, datatype)
        assert alias in ELEMENTS or datatype in DATATYPES, f"no strategy for {datatype}"
        out[alias] = (datatype, "List[" in text, _choice_group(alias.lstrip("_")))
    return out


def _choice_group(name: str) -> str | None:
    """deceased for deceasedBoolean and _deceasedBoolean: one value of a choice at most."""
    field = R4BPatient.model_fields.get(name)
    extra = field.json_schema_extra if field and isinstance(field.json_schema_extra, dict) else {}
    group = extra.get("one_of_many")
    return str(group) if group else None


@st.composite
def patients(draw: st.DrawFn) -> Json:
    """A Patient with a random subset of its elements; always names, mostly one in use."""
    resource: Json = {"resourceType": "Patient"}
    chosen_groups: set[str] = set()
    for alias, (datatype, repeats, group) in sorted(element_types().items()):
        odds = 12 if alias in RARE else 3
        if alias != "name" and draw(st.integers(0, odds - 1)) != 0:
            continue
        if group is not None:
            if group in chosen_groups:
                continue
            chosen_groups.add(group)
        value = ELEMENTS[alias] if alias in ELEMENTS else DATATYPES[datatype]
        resource[alias] = draw(st.lists(value, min_size=1, max_size=3) if repeats else value)
    if draw(st.integers(0, 6)) != 0:  # mostly a name PeerBridge can list, among the others
        names = resource["name"]
        names.insert(draw(st.integers(0, len(names))), draw(_current_name))
    return resource
