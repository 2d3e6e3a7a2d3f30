"""PeerSupporter ↔ FHIR Practitioner (person, certifications) + PractitionerRole (the job).

Both share the supporter's id. Certifications are `Practitioner.qualification` with issuer and
period; the role carries NUCC 175T00000X "Peer Specialist".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole

from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    PeerSupporter,
    SupervisorKind,
)
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    concept,
    extension_value,
    finish,
    language_concepts,
    languages,
    meta,
    meta_version,
    parse_date,
    ref,
    ref_id,
)


def _qualification(cert: Certification) -> Json:
    return {
        "extension": [
            {"url": codes.EXT_CERT_STATUS, "valueCode": cert.status.value},
            {"url": codes.EXT_CERT_JURISDICTION, "valueString": cert.jurisdiction},
            *(
                [{"url": codes.EXT_CERT_VERIFIED, "valueDate": cert.last_verified_on.isoformat()}]
                if cert.last_verified_on
                else []
            ),
        ],
        "identifier": [{"system": codes.ID_CERTIFICATION, "value": cert.number}],
        "code": concept(codes.CS_CERTIFICATION, cert.subtype.value, text=cert.type),
        "period": {
            "start": cert.issued_on.isoformat(),
            "end": cert.expires_on.isoformat() if cert.expires_on else None,
        },
        "issuer": {"display": cert.issuing_body},
    }


def to_fhir_practitioner(supporter: PeerSupporter) -> Json:
    return finish(
        Practitioner,
        {
            "resourceType": "Practitioner",
            "id": str(supporter.id),
            "meta": meta(supporter.version, supporter.updated_at),
            "active": supporter.active,
            "name": [{"text": supporter.display_name}],
            "qualification": [_qualification(c) for c in supporter.certifications],
            "communication": language_concepts(supporter.languages),
        },
    )


def to_fhir_practitioner_role(supporter: PeerSupporter) -> Json:
    supervisor = (
        [
            {
                "url": codes.EXT_SUPERVISOR,
                "extension": [
                    {"url": "name", "valueString": supporter.supervisor_name},
                    {"url": "kind", "valueCode": supporter.supervisor_kind.value},
                ],
            }
        ]
        if supporter.supervisor_name and supporter.supervisor_kind
        else []
    )
    return finish(
        PractitionerRole,
        {
            "resourceType": "PractitionerRole",
            "id": str(supporter.id),
            "meta": meta(supporter.version, supporter.updated_at),
            "extension": [
                {"url": codes.EXT_MAX_CASELOAD, "valueUnsignedInt": supporter.max_caseload},
                *supervisor,
            ],
            "active": supporter.active,
            "practitioner": ref("Practitioner", supporter.id, supporter.display_name),
            "organization": ref("Organization", supporter.organization_id),
            "code": [concept(codes.NUCC, *codes.PEER_SPECIALIST)],
            "specialty": [
                concept(codes.CS_LIVED_EXPERIENCE, tag.value) for tag in supporter.lived_experience
            ],
        },
    )


def _certification(q: Mapping[str, Any], index: int) -> Certification:
    where = f"Practitioner.qualification[{index}]"
    period = q.get("period", {})
    verified = extension_value(q, codes.EXT_CERT_VERIFIED, "valueDate")
    numbers = [i["value"] for i in q.get("identifier", ()) if i.get("system")]
    return Certification(
        type=q.get("code", {}).get("text", ""),
        subtype=CertificationSubtype(
            (codes_in([q.get("code", {})], codes.CS_CERTIFICATION) or ["general"])[0]
        ),
        issuing_body=q.get("issuer", {}).get("display", ""),
        jurisdiction=extension_value(q, codes.EXT_CERT_JURISDICTION, "valueString") or "",
        number=numbers[0] if numbers else "",
        status=CertificationStatus(
            extension_value(q, codes.EXT_CERT_STATUS, "valueCode") or "active"
        ),
        issued_on=parse_date(period.get("start", ""), f"{where}.period.start"),
        expires_on=parse_date(period["end"], f"{where}.period.end") if "end" in period else None,
        last_verified_on=parse_date(verified, where) if verified else None,
    )


def from_fhir_peer_supporter(
    practitioner: Mapping[str, Any], role: Mapping[str, Any]
) -> PeerSupporter:
    version, updated_at = meta_version(role)
    supervisor = extension_value(role, codes.EXT_SUPERVISOR, "extension") or []
    parts = {e["url"]: e.get("valueString") or e.get("valueCode") for e in supervisor}
    names = practitioner.get("name", [{}])
    return PeerSupporter(
        id=UUID(role["id"]),
        organization_id=ref_id(
            role.get("organization"), "Organization", "PractitionerRole.organization"
        ),
        display_name=names[0].get("text", "") if names else "",
        lived_experience=tuple(
            LivedExperience(c) for c in codes_in(role.get("specialty"), codes.CS_LIVED_EXPERIENCE)
        ),
        languages=languages(practitioner.get("communication")),
        certifications=tuple(
            _certification(q, i) for i, q in enumerate(practitioner.get("qualification", ()))
        ),
        supervisor_name=parts.get("name"),
        supervisor_kind=SupervisorKind(parts["kind"]) if parts.get("kind") else None,
        max_caseload=int(extension_value(role, codes.EXT_MAX_CASELOAD, "valueUnsignedInt") or 0),
        active=bool(role.get("active", True)),
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )
