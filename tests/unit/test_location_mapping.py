"""Location ↔ FHIR: what the mapper models reads back whole; the rest is kept or refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from uuid import uuid4

import pytest
from fhir_strategies import locations
from hypothesis import given, settings

from api.domain.errors import Invalid
from api.domain.locations import Location
from api.domain.verbatim import kept_for
from api.integrations.fhir.resources.datatypes import check_shapes
from api.integrations.fhir.resources.locations import to_fhir_location, upsert_location_command


@pytest.fixture(autouse=True)
def _shapes() -> Iterator[None]:
    check_shapes(True)
    yield
    check_shapes(False)


@settings(max_examples=60, deadline=None)
@given(locations)
def test_every_modelled_element_survives_fhir_and_back(location: Location) -> None:
    command = upsert_location_command(to_fhir_location(location), location.organization_id)
    assert command.name == location.name
    assert command.description == location.description
    assert (command.status, command.mode) == (location.status, location.mode)
    assert command.physical_type == location.physical_type
    assert command.address == location.address
    assert command.telecom == location.telecom
    assert command.position == location.position
    # Only the managing organization (ours) is kept beside the modelled elements.
    kept = kept_for(command.verbatim or {}, "Location")
    assert kept == {
        "managingOrganization": {"reference": f"Organization/{location.organization_id}"}
    }


@settings(max_examples=30, deadline=None)
@given(locations)
def test_kept_elements_lie_over_the_mapped_ones(location: Location) -> None:
    sent = {
        "resourceType": "Location",
        "name": location.name,
        "identifier": [{"system": "http://example.org/id", "value": "7"}],
        "extension": [{"url": "http://example.org/e", "valueString": "x"}],
        "meta": {"profile": ["http://example.org/p"]},
    }
    command = upsert_location_command(sent, location.organization_id)
    kept = replace(location, verbatim=command.verbatim or {})
    resource = to_fhir_location(kept)
    assert resource["identifier"] == sent["identifier"]
    assert resource["extension"] == sent["extension"]
    assert resource["meta"]["profile"] == ["http://example.org/p"]
    assert resource["name"] == location.name


def test_parts_a_modelled_element_lacks_are_refused_by_path() -> None:
    sent = {
        "resourceType": "Location",
        "name": "Hall",
        "_status": {"extension": [{"url": "http://example.org/s", "valueString": "x"}]},
        "address": {"city": "X", "id": "a1"},
        "telecom": [{"system": "phone", "value": "1", "extension": []}],
        "position": {"longitude": 1, "latitude": 2, "extension": []},
        "physicalType": {"coding": [{"system": "s", "code": "c", "version": "1"}]},
        "modifierExtension": [{"url": "http://example.org/m", "valueBoolean": True}],
    }
    with pytest.raises(Invalid) as refused:
        upsert_location_command(sent, uuid4())
    assert {d.field for d in refused.value.details} == {
        "Location._status",
        "Location.address.id",
        "Location.telecom[0].extension",
        "Location.position.extension",
        "Location.physicalType.coding[0].version",
        "Location.modifierExtension[0]",
    }
