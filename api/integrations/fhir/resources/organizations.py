"""Organization (tenant) ↔ FHIR Organization."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.organization import Organization as FhirOrganization

from api.domain.errors import Invalid
from api.domain.organizations import Organization, OrganizationKind
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import Json, coding, finish, meta, meta_version


def to_fhir_organization(organization: Organization) -> Json:
    org_type, org_display = codes.ORG_TYPE_OF[organization.kind]
    return finish(
        FhirOrganization,
        {
            "resourceType": "Organization",
            "id": str(organization.id),
            "meta": meta(organization.version, organization.updated_at),
            "identifier": [{"system": codes.NPI, "value": organization.npi}]
            if organization.npi
            else [],
            "active": organization.active,
            "type": [
                {
                    "coding": [
                        coding(codes.ORG_TYPE, org_type, org_display),
                        coding(codes.CS_ORG_KIND, organization.kind.value),
                    ]
                }
            ],
            "name": organization.name,
        },
    )


def from_fhir_organization(resource: Mapping[str, Any]) -> Organization:
    version, updated_at = meta_version(resource)
    kinds = [
        c["code"]
        for t in resource.get("type", ())
        for c in t.get("coding", ())
        if c.get("system") == codes.CS_ORG_KIND
    ]
    if not kinds:
        by_type = {code: kind for kind, (code, _) in codes.ORG_TYPE_OF.items()}
        kinds = [
            by_type[c["code"]].value
            for t in resource.get("type", ())
            for c in t.get("coding", ())
            if c.get("system") == codes.ORG_TYPE and c.get("code") in by_type
        ]
    if not kinds:
        raise Invalid("needs an organization type (prov or cg)", field="Organization.type")
    npis = [i["value"] for i in resource.get("identifier", ()) if i.get("system") == codes.NPI]
    return Organization(
        id=UUID(resource["id"]),
        name=resource.get("name", ""),
        kind=OrganizationKind(kinds[0]),
        npi=npis[0] if npis else None,
        active=bool(resource.get("active", True)),
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )
