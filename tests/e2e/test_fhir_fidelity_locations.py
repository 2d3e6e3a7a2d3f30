"""The fidelity rule for Location, by property: a Location with any subset of its R4 elements
(names enumerated from the R4B model, values from a small per-datatype table) is either refused
naming an element, or read back as sent by FHIR read, search and the GraphQL `fhir` field."""

from __future__ import annotations

import string
from typing import Any

import asyncpg
import httpx
import pytest
from fhir.resources.R4B.location import Location as FhirLocation
from fhir_support import Fhir, entries, issue_expressions
from graphql_support import GraphQL
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from location_support import assert_kept
from network import Network

from api.domain.locations import ADDRESS_TYPES, ADDRESS_USES, CONTACT_SYSTEMS, CONTACT_USES

# Every element of R4B Location by its JSON name (`_name` for name's primitive extension).
ELEMENTS = {field.alias or name for name, field in FhirLocation.model_fields.items()}
# Not generated: fhir_comments (not FHIR), id/meta.versionId (server's), contained (a resource
# of its own) and `_alias` (a list that must line up with alias).
SKIPPED = {"fhir_comments", "resourceType", "id", "contained", "_alias"}
MODELLED_PRIMITIVES = ("name", "description", "status", "mode")
# Elements PeerBridge can neither keep nor honour: at most one per example, so most keep.
REFUSED = ("implicitRules", "modifierExtension", *(f"_{e}" for e in MODELLED_PRIMITIVES))

text = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 .,'-]{0,14}[A-Za-z0-9]\Z")
url = st.builds(lambda s: f"http://example.org/{s}", st.text(string.ascii_lowercase, min_size=1))
day = st.dates().map(lambda d: d.isoformat())
period = st.fixed_dictionaries({}, optional={"start": day, "end": st.just("2999-12-31")})
extension = st.lists(
    st.fixed_dictionaries({"url": url, "valueString": text}), min_size=1, max_size=2
)
primitive_extension = st.fixed_dictionaries({"extension": extension})
coding = st.fixed_dictionaries({"system": url, "code": text}, optional={"display": text})
concept = st.fixed_dictionaries(
    {}, optional={"coding": st.lists(coding, min_size=1, max_size=2), "text": text}
).filter(bool)
address = st.fixed_dictionaries(
    {},
    optional={
        "use": st.sampled_from(sorted(ADDRESS_USES)),
        "type": st.sampled_from(sorted(ADDRESS_TYPES)),
        "text": text,
        "line": st.lists(text, min_size=1, max_size=2),
        "city": text,
        "district": text,
        "state": text,
        "postalCode": text,
        "country": text,
        "period": period.filter(bool),
    },
).filter(bool)
# Now and then an extension inside the address, which a modelled address cannot keep: refused.
address = st.tuples(address, st.integers(0, 4), extension).map(
    lambda a: {**a[0], "extension": a[2]} if a[1] == 0 else a[0]
)
contact = st.fixed_dictionaries(
    {"system": st.sampled_from(sorted(CONTACT_SYSTEMS))},
    optional={
        "value": text,
        "use": st.sampled_from(sorted(CONTACT_USES)),
        "rank": st.integers(1, 9),
        "period": period.filter(bool),
    },
)
position = st.fixed_dictionaries(
    {
        "longitude": st.floats(-180, 180, allow_nan=False).map(lambda f: round(f, 5)),
        "latitude": st.floats(-90, 90, allow_nan=False).map(lambda f: round(f, 5)),
    },
    optional={"altitude": st.integers(-100, 4000) | st.floats(0, 100).map(lambda f: round(f, 2))},
)
reference = st.fixed_dictionaries(
    {"reference": st.uuids().map(lambda u: f"Location/{u}")}, optional={"display": text}
)
narrative = st.just(
    {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">A hall</div>'}
)
hours = st.lists(
    st.fixed_dictionaries(
        {"daysOfWeek": st.lists(st.sampled_from(["mon", "tue", "sat"]), min_size=1, unique=True)},
        optional={"allDay": st.booleans(), "openingTime": st.just("09:00:00")},
    ),
    min_size=1,
    max_size=2,
)


def _strategies(peer_id: str) -> dict[str, st.SearchStrategy[Any]]:
    """A value for each generated element (the per-datatype table, applied to Location)."""
    managing = st.fixed_dictionaries(
        {"reference": st.just(f"Organization/{peer_id}")}, optional={"display": text}
    )
    return {
        "meta": st.fixed_dictionaries(
            {},
            optional={
                "profile": st.lists(url, min_size=1, max_size=2, unique=True),
                "tag": st.lists(coding, min_size=1, max_size=1),
                "source": url,
            },
        ).filter(bool),
        "implicitRules": url,
        "language": st.sampled_from(["en", "en-US", "es"]),
        "text": narrative,
        "extension": extension,
        "modifierExtension": extension,
        "identifier": st.lists(
            st.fixed_dictionaries({"system": url, "value": text}), min_size=1, max_size=2
        ),
        "status": st.sampled_from(["active", "suspended", "inactive"]),
        "operationalStatus": coding,
        "name": text,
        "alias": st.lists(text, min_size=1, max_size=2),
        "description": text,
        "mode": st.sampled_from(["instance", "kind"]),
        "type": st.lists(concept, min_size=1, max_size=2),
        "telecom": st.lists(contact, min_size=1, max_size=2),
        "address": address,
        "physicalType": concept,
        "position": position,
        "managingOrganization": managing,
        "partOf": reference,
        "hoursOfOperation": hours,
        "availabilityExceptions": text,
        "endpoint": st.lists(
            reference.map(lambda r: {**r, "reference": "Endpoint/e1"}), min_size=1, max_size=1
        ),
        **{f"_{e}": primitive_extension for e in ("language", "availabilityExceptions")},
        **{f"_{e}": primitive_extension for e in MODELLED_PRIMITIVES},
        "_implicitRules": primitive_extension,
    }


def test_the_strategy_table_covers_every_location_element() -> None:
    assert set(_strategies("x")) == ELEMENTS - SKIPPED


def expected_refusals(resource: dict[str, Any]) -> set[str]:
    """The elements PeerBridge must refuse (it cannot keep or honour them)."""
    refused = {"Location.implicitRules"} if "implicitRules" in resource else set()
    refused |= {f"Location._{e}" for e in MODELLED_PRIMITIVES if f"_{e}" in resource}
    if "modifierExtension" in resource:
        refused.add("Location.modifierExtension[0]")
    if "name" not in resource:
        refused.add("Location.name")
    if "extension" in resource.get("address", {}):
        refused.add("Location.address.extension")
    return refused


LOCATION_FHIR = "query($id: ID!) { location(id: $id) { fhir } }"


@pytest.fixture
async def doors(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> tuple[Fhir, GraphQL]:
    return (
        await Fhir.as_organization(client, pool, network.peer),
        await GraphQL.as_organization(client, pool, network.clinic),
    )


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_any_location_is_kept_as_sent_or_refused_naming_an_element(
    network: Network, doors: tuple[Fhir, GraphQL], data: st.DataObject
) -> None:
    peer, clinic = doors
    table = _strategies(str(network.peer.id))
    names = data.draw(st.sets(st.sampled_from(sorted(set(table) - set(REFUSED))), max_size=12))
    if data.draw(st.integers(0, 4)) > 0:  # most real Locations have a name
        names.add("name")
    if data.draw(st.integers(0, 3)) == 0:
        names.add(data.draw(st.sampled_from(REFUSED)))
    resource = {
        "resourceType": "Location",
        **{n: data.draw(table[n], label=n) for n in sorted(names)},
    }
    response = await peer.request("POST", "Location", resource)
    refusals = expected_refusals(resource)
    if refusals or response.status_code != 201:
        event(f"refused: {sorted(set(issue_expressions(response.json())))}")
        assert response.status_code in (400, 422), response.text
        named = set(issue_expressions(response.json()))
        assert named, response.text
        assert refusals <= named, (refusals, named)
        assert all(x.startswith("Location.") for x in named), named
        return
    event("kept")
    created = response.json()
    assert_kept(resource, created, network)
    assert_kept(resource, await peer.ok("GET", f"Location/{created['id']}"), network)
    (found,) = entries(await peer.ok("GET", f"Location?_id={created['id']}"))
    assert_kept(resource, found, network)
    answer = await clinic.data(LOCATION_FHIR, id=created["id"])
    assert_kept(resource, answer["location"]["fhir"], network)
