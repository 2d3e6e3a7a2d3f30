"""Where peer programs meet, through the FHIR door: Location create/read/search/update (what a
peer organization sends is what every reader gets back), HealthcareService.location, the
`location` search and `_include=HealthcareService:location`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fhir_support import Fhir, entries, issue_expressions
from location_support import assert_kept, full_location
from network import Network

from api.db.uow import PostgresUnitOfWork
from api.domain.errors import Invalid
from api.services import programs

IG = Path(__file__).parent.parent / "fixtures" / "ig"


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def _link(network: Network, *location_ids: str) -> None:
    program = network.program
    await programs.upsert_program(
        PostgresUnitOfWork(network.pool),
        network.as_peer,
        programs.UpsertPeerProgram(
            name=program.name,
            kind=program.kind,
            id=program.id,
            expected_version=program.version,
            delivery_modes=program.delivery_modes,
            capacity=program.capacity,
            location_ids=tuple(UUID(i) for i in location_ids),
        ),
    )


async def test_a_location_reads_back_as_the_peer_sent_it_by_every_route(
    network: Network, peer: Fhir, clinic: Fhir
) -> None:
    sent = full_location(network)
    response = await peer.request("POST", "Location", sent)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"].endswith(f"Location/{created['id']}/_history/1")
    assert_kept(sent, created, network)
    assert_kept(sent, await clinic.ok("GET", f"Location/{created['id']}"), network)
    found = entries(await clinic.ok("GET", "Location?name=grace&address-city=springfield"))
    assert [r["id"] for r in found] == [created["id"]]
    assert_kept(sent, found[0], network)


async def test_transaction_entries_create_locations_kept_as_sent(
    network: Network, peer: Fhir
) -> None:
    sent = full_location(network)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:4f6a4c1e-8a2b-4d1e-9a43-7d1b2f0a9e11",
                "resource": sent,
                "request": {"method": "POST", "url": "Location"},
            }
        ],
    }
    answer = await peer.ok("POST", "", bundle)
    location = answer["entry"][0]["response"]["location"]
    read = await peer.ok("GET", location.split("/_history")[0])
    assert_kept(sent, read, network)


@pytest.mark.parametrize(
    "example",
    [
        "sdoh-clinicalcare/Location-SDOHCC-LocationExample.json",
        "bser/Location-location-us-core-location-st-luke.json",
    ],
)
async def test_official_ig_location_examples_are_accepted_and_read_back_unchanged(
    network: Network, peer: Fhir, example: str
) -> None:
    sent = json.loads((IG / example).read_text())
    sent.pop("id")
    if "managingOrganization" in sent:  # re-pointed to the posting organization
        sent["managingOrganization"] = {"reference": f"Organization/{network.peer.id}"}
    created = await peer.ok("POST", "Location", sent)
    assert_kept(sent, await peer.ok("GET", f"Location/{created['id']}"), network)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (
            {
                "address": {
                    "city": "X",
                    "extension": [{"url": "http://e.org/a", "valueString": "b"}],
                }
            },
            "Location.address.extension",
        ),
        ({"telecom": [{"system": "phone", "value": "1", "id": "t1"}]}, "Location.telecom[0].id"),
        (
            {"_name": {"extension": [{"url": "http://e.org/n", "valueString": "x"}]}},
            "Location._name",
        ),
        (
            {"modifierExtension": [{"url": "http://e.org/m", "valueBoolean": True}]},
            "Location.modifierExtension[0]",
        ),
        ({"physicalType": {"coding": [{"code": "bu"}]}}, "Location.physicalType.coding[0]"),
        ({"name": "   "}, "Location.name"),
        ({"position": {"longitude": 200, "latitude": 0}}, "Location.position.longitude"),
        ({"telecom": [{"value": "555"}]}, "Location.telecom[0].system"),
        ({"address": {"period": {"start": "soon"}}}, "Location.address.period.start"),
    ],
)
async def test_what_cannot_be_kept_is_refused_naming_the_element(
    network: Network, peer: Fhir, change: dict[str, Any], expression: str
) -> None:
    sent = {"resourceType": "Location", "name": "Hall", **change}
    response = await peer.request("POST", "Location", sent)
    assert response.status_code in (400, 422), response.text
    assert expression in issue_expressions(response.json())


async def test_only_the_owning_peer_organization_creates_and_updates_its_locations(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, peer: Fhir, clinic: Fhir
) -> None:
    sent = {"resourceType": "Location", "name": "Hall"}
    by_clinic = await clinic.request("POST", "Location", sent)
    assert by_clinic.status_code == 403, by_clinic.text
    elsewhere = {
        **sent,
        "managingOrganization": {"reference": f"Organization/{network.stranger.id}"},
    }
    refused = await peer.request("POST", "Location", elsewhere)
    assert refused.status_code == 422
    assert issue_expressions(refused.json()) == ["Location.managingOrganization"]
    created = await peer.ok("POST", "Location", sent)
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    theirs = {k: v for k, v in created.items() if k != "managingOrganization"}
    taken = await stranger.request("PUT", f"Location/{created['id']}", theirs)
    assert taken.status_code == 403, taken.text
    claimed = await stranger.request("PUT", f"Location/{created['id']}", created)
    assert issue_expressions(claimed.json()) == ["Location.managingOrganization"]


async def test_update_replaces_the_location_and_honours_if_match(
    network: Network, peer: Fhir
) -> None:
    created = await peer.ok("POST", "Location", full_location(network))
    path = f"Location/{created['id']}"
    replacement = {
        "resourceType": "Location",
        "id": created["id"],
        "name": "Grace Church Hall (annex)",
        "status": "suspended",
        "alias": ["The Annex"],
    }
    stale = await peer.request("PUT", path, replacement, {"if-match": 'W/"5"'})
    assert stale.status_code == 412, stale.text
    updated = await peer.request("PUT", path, replacement, {"if-match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert updated.headers["etag"] == 'W/"2"'
    read = await peer.ok("GET", path)
    assert_kept(replacement, {**read, "id": created["id"]}, network)
    assert "identifier" not in read and "address" not in read  # a PUT replaces the whole
    wrong_id = await peer.request("PUT", path, {**replacement, "id": str(network.peer.id)})
    assert issue_expressions(wrong_id.json()) == ["Location.id"]


async def test_location_searches(network: Network, peer: Fhir, clinic: Fhir) -> None:
    hall = await peer.ok("POST", "Location", full_location(network))
    other = await peer.ok(
        "POST",
        "Location",
        {
            "resourceType": "Location",
            "name": "Riverside Room",
            "status": "inactive",
            "address": {"city": "Peoria", "state": "IL", "postalCode": "61602"},
        },
    )
    org = f"organization=Organization/{network.peer.id}"
    cases = {
        f"{org}&_sort=_lastUpdated": [hall["id"], other["id"]],
        f"{org}&name=GRACE": [hall["id"]],
        f"{org}&name:exact=Grace": [],
        f"{org}&name:exact=Grace Church Hall": [hall["id"]],
        f"{org}&address-city=peoria": [other["id"]],
        f"{org}&address-state=il&_sort=-_lastUpdated": [other["id"], hall["id"]],
        f"{org}&address-postalcode=627": [hall["id"]],
        f"{org}&status=inactive": [other["id"]],
        f"{org}&status=closed": [],
        f"_id={other['id']}": [other["id"]],
        f"organization=Organization/{network.stranger.id}": [],
    }
    for query, expected in cases.items():
        found = entries(await clinic.ok("GET", f"Location?{query}"))
        assert [r["id"] for r in found] == expected, query
    refused = await clinic.get("Location?address-city:exact=Peoria")
    assert refused.status_code == 400
    assert issue_expressions(refused.json()) == ["address-city:exact"]


async def test_programs_list_their_locations_and_search_and_include_by_them(
    network: Network, peer: Fhir, clinic: Fhir
) -> None:
    hall = await peer.ok("POST", "Location", full_location(network))
    room = await peer.ok("POST", "Location", {"resourceType": "Location", "name": "Room 2"})
    await _link(network, room["id"], hall["id"])
    service = await clinic.ok("GET", f"HealthcareService/{network.program.id}")
    assert service["location"] == [
        {"reference": f"Location/{room['id']}"},
        {"reference": f"Location/{hall['id']}"},
    ]
    bundle = await clinic.ok(
        "GET",
        f"HealthcareService?location=Location/{hall['id']}&_include=HealthcareService:location",
    )
    assert [r["id"] for r in entries(bundle, "match")] == [str(network.program.id)]
    included = {r["id"]: r for r in entries(bundle, "include")}
    assert set(included) == {hall["id"], room["id"]}
    assert_kept(full_location(network), included[hall["id"]], network)
    unused = await peer.ok("POST", "Location", {"resourceType": "Location", "name": "Unused"})
    nothing = await clinic.ok("GET", f"HealthcareService?location={unused['id']}")
    assert entries(nothing) == []


async def test_a_program_meets_only_at_its_own_organizations_locations(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    theirs = await stranger.ok("POST", "Location", {"resourceType": "Location", "name": "Theirs"})
    with pytest.raises(Invalid) as refused:
        await _link(network, theirs["id"])
    assert [d.field for d in refused.value.details] == ["locationIds[0]"]


async def test_capability_statement_lists_location_and_the_program_location_search(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    location = by_type["Location"]
    assert {i["code"] for i in location["interaction"]} == {
        "read",
        "vread",
        "search-type",
        "create",
        "update",
    }
    assert {"_id", "organization", "name", "address-city"} <= {
        p["name"] for p in location["searchParam"]
    }
    service = by_type["HealthcareService"]
    assert "location" in {p["name"] for p in service["searchParam"]}
    assert service["searchInclude"] == ["HealthcareService:location"]
