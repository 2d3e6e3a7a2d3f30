"""Program locations through GraphQL, and the same records through FHIR: one truth, two doors."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from fhir_support import Fhir
from graphql_support import GraphQL, error_codes
from network import Network

UPSERT_LOCATION = """
mutation Upsert($input: UpsertLocationInput!) {
  upsertLocation(input: $input) {
    id name description status mode version
    physicalType { codings { system code display } text }
    address { lines city state postalCode use period { start } }
    telecom { system value use rank }
    position { longitude latitude altitude }
    organization { id }
    fhir
  }
}"""

UPSERT_PROGRAM = """
mutation Program($input: UpsertPeerProgramInput!) {
  upsertPeerProgram(input: $input) { id version locations { id name } fhir }
}"""

HALL: dict[str, Any] = {
    "name": "Grace Church Hall",
    "description": "Side entrance",
    "status": "ACTIVE",
    "mode": "INSTANCE",
    "physicalType": {
        "codings": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                "code": "bu",
                "display": "Building",
            }
        ]
    },
    "address": {
        "lines": ["12 Elm St"],
        "city": "Springfield",
        "state": "IL",
        "postalCode": "62701",
        "use": "work",
        "period": {"start": "2020"},
    },
    "telecom": [{"system": "phone", "value": "+1 555 0100", "rank": 1}],
    "position": {"longitude": -89.65, "latitude": 39.78},
}


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.peer)


@pytest.fixture
async def peer_fhir(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def test_upsert_location_reads_the_same_on_both_doors(
    network: Network, peer: GraphQL, peer_fhir: Fhir
) -> None:
    created = (await peer.data(UPSERT_LOCATION, input=HALL))["upsertLocation"]
    assert created["organization"]["id"] == str(network.peer.id)
    assert created["address"]["period"] == {"start": "2020"}
    read = await peer_fhir.ok("GET", f"Location/{created['id']}")
    assert created["fhir"] == read
    assert read["status"] == "active" and read["mode"] == "instance"
    assert read["address"] == {
        "use": "work",
        "line": ["12 Elm St"],
        "city": "Springfield",
        "state": "IL",
        "postalCode": "62701",
        "period": {"start": "2020"},
    }
    assert read["position"] == {"longitude": -89.65, "latitude": 39.78}


async def test_a_graphql_edit_keeps_what_only_fhir_carries(
    network: Network, peer: GraphQL, peer_fhir: Fhir
) -> None:
    sent = {
        "resourceType": "Location",
        "name": "Old Name",
        "identifier": [{"system": "http://example.org/sites", "value": "S-1"}],
        "hoursOfOperation": [{"daysOfWeek": ["mon"], "allDay": True}],
        "address": {"city": "Peoria"},
    }
    created = await peer_fhir.ok("POST", "Location", sent)
    edit = {**HALL, "id": created["id"], "expectedVersion": 1, "name": "New Name"}
    edited = (await peer.data(UPSERT_LOCATION, input=edit))["upsertLocation"]
    assert edited["version"] == 2
    read = await peer_fhir.ok("GET", f"Location/{created['id']}")
    assert read["name"] == "New Name" and read["address"]["city"] == "Springfield"
    assert read["identifier"] == sent["identifier"]
    assert read["hoursOfOperation"] == sent["hoursOfOperation"]
    stale = await peer.run(UPSERT_LOCATION, input=edit)
    assert error_codes(stale) == [("upsertLocation", "CONFLICT")]


async def test_programs_meet_at_listed_locations_in_order(
    network: Network, peer: GraphQL, peer_fhir: Fhir
) -> None:
    one = (await peer.data(UPSERT_LOCATION, input=HALL))["upsertLocation"]
    two = (await peer.data(UPSERT_LOCATION, input={"name": "Room 2"}))["upsertLocation"]
    program = network.program
    base = {
        "id": str(program.id),
        "name": program.name,
        "kind": "SUPPORT_GROUP",
        "expectedVersion": program.version,
    }
    linked = (
        await peer.data(UPSERT_PROGRAM, input={**base, "locationIds": [two["id"], one["id"]]})
    )["upsertPeerProgram"]
    assert [x["name"] for x in linked["locations"]] == ["Room 2", "Grace Church Hall"]
    assert [r["reference"] for r in linked["fhir"]["location"]] == [
        f"Location/{two['id']}",
        f"Location/{one['id']}",
    ]
    kept = (await peer.data(UPSERT_PROGRAM, input={**base, "expectedVersion": linked["version"]}))[
        "upsertPeerProgram"
    ]
    assert [x["id"] for x in kept["locations"]] == [two["id"], one["id"]]  # left out: kept
    cleared = (
        await peer.data(
            UPSERT_PROGRAM,
            input={**base, "expectedVersion": kept["version"], "locationIds": []},
        )
    )["upsertPeerProgram"]
    assert cleared["locations"] == [] and "location" not in cleared["fhir"]


async def test_bad_location_input_is_refused_naming_the_field(peer: GraphQL) -> None:
    bad = {
        **HALL,
        "description": "",
        "address": {"city": "Springfield", "use": "vacation"},
        "telecom": [{"value": "555"}],
        "position": {"longitude": 0, "latitude": 91},
    }
    body = await peer.run(UPSERT_LOCATION, input=bad)
    assert error_codes(body) == [("upsertLocation", "INVALID_INPUT")]
    fields = {d["field"] for d in body["errors"][0]["extensions"]["details"]}
    assert fields == {"description", "address.use", "telecom[0].system", "position.latitude"}


async def test_clinics_read_locations_but_do_not_keep_them(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, peer: GraphQL
) -> None:
    created = (await peer.data(UPSERT_LOCATION, input=HALL))["upsertLocation"]
    clinic = await GraphQL.as_organization(client, pool, network.clinic)
    found = await clinic.data(
        "query($city: String) { locations(filter: {city: $city}) { nodes { id name } } }",
        city="springfield",
    )
    assert {"id": created["id"], "name": "Grace Church Hall"} in found["locations"]["nodes"]
    node = await clinic.data(
        "query($id: ID!) { node(id: $id) { ... on Location { name } } }", id=created["id"]
    )
    assert node["node"] == {"name": "Grace Church Hall"}
    refused = await clinic.run(UPSERT_LOCATION, input={"name": "Clinic room"})
    assert error_codes(refused) == [("upsertLocation", "FORBIDDEN")]


async def test_a_gateway_resolves_location_entities_and_program_locations(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, peer: GraphQL
) -> None:
    created = (await peer.data(UPSERT_LOCATION, input=HALL))["upsertLocation"]
    stranger = await GraphQL.as_organization(client, pool, network.stranger)
    found = await stranger.data(
        """query($reps: [_Any!]!) { _entities(representations: $reps) {
            ... on Location { name address { city } organization { id } } } }""",
        reps=[{"__typename": "Location", "id": created["id"]}],
    )
    assert found["_entities"] == [
        {
            "name": "Grace Church Hall",
            "address": {"city": "Springfield"},
            "organization": {"id": str(network.peer.id)},
        }
    ]
