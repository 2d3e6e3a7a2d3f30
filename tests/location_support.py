"""Locations in tests: one with every element, and "read back as sent" for the fidelity rule."""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from network import Network


def full_location(network: Network) -> dict[str, Any]:
    """Every element a Location may carry, modelled or kept."""
    return {
        "resourceType": "Location",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-location"]},
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Hall</div>',
        },
        "language": "en-US",
        "extension": [{"url": "http://example.org/fhir/parking", "valueBoolean": True}],
        "identifier": [{"system": "http://example.org/sites", "value": "HALL-7"}],
        "status": "active",
        "operationalStatus": {
            "system": "http://terminology.hl7.org/CodeSystem/v2-0116",
            "code": "O",
            "display": "Occupied",
        },
        "name": "Grace Church Hall",
        "alias": ["The Hall"],
        "description": "Side entrance, second floor",
        "mode": "instance",
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                        "code": "COMM",
                        "display": "Community Location",
                    }
                ]
            }
        ],
        "telecom": [
            {"system": "phone", "value": "+1 555 0100", "use": "work", "rank": 1},
            {
                "system": "email",
                "value": "hall@example.org",
                "period": {"start": "2026", "end": "2027-06-30"},
            },
        ],
        "address": {
            "use": "work",
            "type": "physical",
            "text": "12 Elm St, Springfield, IL 62701",
            "line": ["12 Elm St", "Floor 2"],
            "city": "Springfield",
            "district": "Sangamon",
            "state": "IL",
            "postalCode": "62701",
            "country": "US",
            "period": {"start": "2020-01-01"},
        },
        "physicalType": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/location-physical-type",
                    "code": "bu",
                    "display": "Building",
                }
            ],
            "text": "church hall",
        },
        "position": {"longitude": -89.65, "latitude": 39.78, "altitude": 0},
        "managingOrganization": {
            "reference": f"Organization/{network.peer.id}",
            "display": "Peers",
        },
        "hoursOfOperation": [
            {"daysOfWeek": ["tue", "thu"], "openingTime": "18:00:00", "closingTime": "20:00:00"}
        ],
        "availabilityExceptions": "Closed on public holidays",
    }


def as_sent(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource without what the server assigns (id, versionId, lastUpdated)."""
    out = deepcopy(resource)
    out.pop("id", None)
    meta = out.pop("meta", {})
    kept = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated", "security")}
    if kept:
        out["meta"] = kept
    return out


def assert_kept(sent: dict[str, Any], read: dict[str, Any], network: Network) -> None:
    expected = as_sent(sent)
    expected.setdefault(
        "managingOrganization", {"reference": f"Organization/{network.peer.id}"}
    )  # the one element the server adds: who keeps the location
    assert as_sent(read) == expected
