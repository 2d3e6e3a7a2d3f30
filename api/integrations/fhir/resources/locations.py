"""Program location ↔ FHIR Location (Gravity SDOHCC Location, US Core Location).

Modelled (the record is their truth, since GraphQL may change them too): name, description,
status, mode, physicalType, address, telecom and position; each is read whole, and a part the
model lacks (an extension inside an address, say) is refused by path rather than dropped.
managingOrganization must be the caller's organization; it is kept as sent (it never changes).
Everything else — identifier, type, alias, hoursOfOperation, partOf, extensions — is kept
verbatim and laid back on read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.location import Location as FhirLocation

from api.domain.errors import Invalid, InvalidDetail
from api.domain.locations import (
    Address,
    Concept,
    ContactPoint,
    Location,
    LocationMode,
    LocationStatus,
    Period,
    Position,
)
from api.domain.referrals import Coding
from api.domain.verbatim import kept_for, with_kept
from api.integrations.fhir.resources.datatypes import Json, finish, meta, ref, ref_id
from api.integrations.fhir.resources.kept import Keeping, merge
from api.services.locations import UpsertLocation

_MODELLED = frozenset(
    {
        "name",
        "description",
        "status",
        "mode",
        "physicalType",
        "address",
        "telecom",
        "position",
    }
)
KEEPING = Keeping("Location", owned=_MODELLED)

# The parts of each modelled element PeerBridge reads and writes back.
_PARTS: dict[str, frozenset[str]] = {
    "Address": frozenset(
        {
            "use",
            "type",
            "text",
            "line",
            "city",
            "district",
            "state",
            "postalCode",
            "country",
            "period",
        }
    ),
    "ContactPoint": frozenset({"system", "value", "use", "rank", "period"}),
    "Period": frozenset({"start", "end"}),
    "Position": frozenset({"longitude", "latitude", "altitude"}),
    "CodeableConcept": frozenset({"coding", "text"}),
    "Coding": frozenset({"system", "code", "display"}),
}


def _period(period: Period | None) -> Json | None:
    return {"start": period.start, "end": period.end} if period else None


def _fhir_address(address: Address) -> Json:
    return {
        "use": address.use,
        "type": address.type,
        "text": address.text,
        "line": list(address.lines),
        "city": address.city,
        "district": address.district,
        "state": address.state,
        "postalCode": address.postal_code,
        "country": address.country,
        "period": _period(address.period),
    }


def _fhir_concept(concept: Concept) -> Json:
    return {
        "coding": [
            {"system": c.system, "code": c.code, "display": c.display} for c in concept.codings
        ],
        "text": concept.text,
    }


def to_fhir_location(location: Location) -> Json:
    position = location.position
    resource = finish(
        FhirLocation,
        {
            "resourceType": "Location",
            "id": str(location.id),
            "meta": meta(location.version, location.updated_at),
            "status": location.status.value if location.status else None,
            "name": location.name,
            "description": location.description,
            "mode": location.mode.value if location.mode else None,
            "physicalType": _fhir_concept(location.physical_type)
            if location.physical_type
            else None,
            "telecom": [
                {
                    "system": t.system,
                    "value": t.value,
                    "use": t.use,
                    "rank": t.rank,
                    "period": _period(t.period),
                }
                for t in location.telecom
            ],
            "address": _fhir_address(location.address) if location.address else None,
            "position": {
                "longitude": position.longitude,
                "latitude": position.latitude,
                "altitude": position.altitude,
            }
            if position
            else None,
            "managingOrganization": ref("Organization", location.organization_id),
        },
    )
    return merge(resource, kept_for(location.verbatim, "Location"))


def _only(value: Any, datatype: str, path: str, problems: list[InvalidDetail]) -> Mapping[str, Any]:
    """The element when it holds only parts PeerBridge models; each other part is refused."""
    if not isinstance(value, Mapping):
        return {}
    for key in value:
        if key not in _PARTS[datatype]:
            problems.append(
                InvalidDetail(
                    f"{path}.{key}",
                    f"PeerBridge models this {datatype} and does not keep {key} in it; "
                    "send it without",
                )
            )
    return value


def _from_period(value: Any, path: str, problems: list[InvalidDetail]) -> Period | None:
    found = _only(value, "Period", path, problems)
    return Period(found.get("start"), found.get("end")) if found else None


def _from_address(value: Any, problems: list[InvalidDetail]) -> Address | None:
    found = _only(value, "Address", "Location.address", problems)
    if not found:
        return None
    return Address(
        use=found.get("use"),
        type=found.get("type"),
        text=found.get("text"),
        lines=tuple(found.get("line", ())),
        city=found.get("city"),
        district=found.get("district"),
        state=found.get("state"),
        postal_code=found.get("postalCode"),
        country=found.get("country"),
        period=_from_period(found.get("period"), "Location.address.period", problems),
    )


def _from_telecom(values: Any, problems: list[InvalidDetail]) -> tuple[ContactPoint, ...]:
    out = []
    for index, value in enumerate(values or ()):
        path = f"Location.telecom[{index}]"
        found = _only(value, "ContactPoint", path, problems)
        out.append(
            ContactPoint(
                system=found.get("system"),
                value=found.get("value"),
                use=found.get("use"),
                rank=found.get("rank"),
                period=_from_period(found.get("period"), f"{path}.period", problems),
            )
        )
    return tuple(out)


def _from_concept(value: Any, path: str, problems: list[InvalidDetail]) -> Concept | None:
    found = _only(value, "CodeableConcept", path, problems)
    if not found:
        return None
    codings = []
    for index, coding in enumerate(found.get("coding", ())):
        where = f"{path}.coding[{index}]"
        part = _only(coding, "Coding", where, problems)
        if not part.get("system") or not part.get("code"):
            problems.append(InvalidDetail(where, "a coding here needs a system and a code"))
            continue
        codings.append(Coding(part["system"], part["code"], part.get("display")))
    return Concept(tuple(codings), found.get("text"))


def _from_position(value: Any, problems: list[InvalidDetail]) -> Position | None:
    found = _only(value, "Position", "Location.position", problems)
    if not found:
        return None
    return Position(found["longitude"], found["latitude"], found.get("altitude"))


def upsert_location_command(
    resource: Mapping[str, Any],
    organization_id: UUID,
    *,
    location_id: UUID | None = None,
    expected_version: int | None = None,
) -> UpsertLocation:
    """What a peer organization POSTs or PUTs: modelled elements read whole, the rest kept."""
    problems: list[InvalidDetail] = []
    for name in ("name", "description", "status", "mode"):
        if f"_{name}" in resource:  # an extension on a modelled primitive
            problems.append(
                InvalidDetail(
                    f"Location._{name}",
                    f"PeerBridge models {name} and does not keep extensions on it",
                )
            )
    if not isinstance(resource.get("name"), str):
        problems.append(InvalidDetail("Location.name", "a program location needs a name"))
    managing = resource.get("managingOrganization")
    if managing is not None and (
        ref_id(managing, "Organization", "Location.managingOrganization") != organization_id
    ):
        problems.append(
            InvalidDetail(
                "Location.managingOrganization",
                "a peer organization manages its own locations: reference your organization",
            )
        )
    physical_type = _from_concept(resource.get("physicalType"), "Location.physicalType", problems)
    address = _from_address(resource.get("address"), problems)
    telecom = _from_telecom(resource.get("telecom"), problems)
    position = _from_position(resource.get("position"), problems)
    try:
        kept = KEEPING.split(resource)  # refuses unknown modifiers and implicitRules
    except Invalid as refused:
        problems.extend(refused.details)
    if problems:
        raise Invalid(problems)
    status, mode = resource.get("status"), resource.get("mode")
    return UpsertLocation(
        name=resource["name"],
        id=location_id,
        expected_version=expected_version,
        description=resource.get("description"),
        status=LocationStatus(status) if status else None,
        mode=LocationMode(mode) if mode else None,
        physical_type=physical_type,
        address=address,
        telecom=telecom,
        position=position,
        verbatim=with_kept({}, "Location", kept),
    )
