"""Consent ↔ FHIR R4 Consent (`patient-privacy`); its source is the signed form recorded here
(`sourceReference` → DocumentReference, see documents.py) or a URL (`sourceAttachment`).

Provision: permit, the recipient organization as actor (IRCP), purposes (v3 ActReason), data
classes, period. Revoked or expired = status `inactive`; the revocation itself is an extension.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from fhir.resources.R4B.consent import Consent as FhirConsent

from api.domain.consents import Consent, ConsentStatus, DataClass
from api.domain.documents import form_id_in, source_reference_of
from api.domain.errors import Invalid
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    coding,
    concept,
    extension_value,
    finish,
    instant,
    meta,
    meta_version,
    parse_instant,
    ref,
    ref_id,
)
from api.services.consents import GrantConsent


def to_fhir_consent(consent: Consent, *, now: datetime) -> Json:
    classes = sorted(consent.data_classes)
    part2 = DataClass.SUBSTANCE_USE in consent.data_classes
    active = consent.status_at(now) is ConsentStatus.ACTIVE
    revocation = (
        [
            {
                "url": codes.EXT_REVOCATION,
                "extension": [
                    {"url": "at", "valueDateTime": instant(consent.revoked_at)},
                    *(
                        [{"url": "reason", "valueString": consent.revocation_reason}]
                        if consent.revocation_reason
                        else []
                    ),
                ],
            }
        ]
        if consent.revoked and consent.revoked_at
        else []
    )
    return finish(
        FhirConsent,
        {
            "resourceType": "Consent",
            "id": str(consent.id),
            "meta": meta(consent.version, consent.updated_at, part2=part2),
            "extension": revocation,
            "status": "active" if active else "inactive",
            "scope": concept(codes.CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
            "category": [concept(codes.LOINC, codes.DOC_TYPE_LOINC_CONSENT, "Patient Consent")],
            "patient": ref("Patient", consent.patient_id),
            "dateTime": instant(consent.created_at),
            "organization": [ref("Organization", consent.recorded_by_organization_id)],
            **_source(consent),
            "policy": [{"uri": codes.PART2_POLICY_URI}] if part2 else [],
            "policyRule": concept(codes.CONSENT_POLICY, "hipaa-auth", "HIPAA Authorization"),
            "provision": {
                "type": "permit",
                "period": {
                    "start": instant(consent.period_start),
                    "end": instant(consent.period_end) if consent.period_end else None,
                },
                "actor": [
                    {
                        "role": concept(codes.PARTICIPATION_TYPE, "IRCP", "information recipient"),
                        "reference": ref("Organization", consent.recipient_organization_id),
                    }
                ],
                "purpose": [
                    coding(codes.ACT_REASON, *codes.PURPOSE_CODE[p])
                    for p in sorted(consent.purposes)
                ],
                "class": [
                    coding(codes.CS_DATA_CLASS, c.value, codes.DATA_CLASS_DISPLAY[c])
                    for c in classes
                ],
                "securityLabel": [dict(label) for label in codes.PART2_LABELS] if part2 else [],
            },
        },
    )


def _source(consent: Consent) -> Json:
    """A form recorded here is referenced; any other source (a URL) is an attachment."""
    form_id = form_id_in(consent.source_reference)
    if form_id is not None:
        return {"sourceReference": ref("DocumentReference", form_id)}
    if consent.source_reference:
        return {"sourceAttachment": {"url": consent.source_reference}}
    return {}


def source_of(resource: Mapping[str, Any]) -> str | None:
    """`sourceReference` → the recorded form; `sourceAttachment` → its URL."""
    if "sourceReference" in resource:
        form_id = ref_id(
            resource["sourceReference"], "DocumentReference", "Consent.sourceReference"
        )
        return source_reference_of(form_id)
    if "sourceAttachment" in resource:
        url = resource["sourceAttachment"].get("url")
        if not isinstance(url, str):
            raise Invalid("a source attachment is a url", field="Consent.sourceAttachment.url")
        return url
    return None


def _provision(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    provision = resource.get("provision")
    if not isinstance(provision, Mapping) or provision.get("type", "permit") != "permit":
        raise Invalid("needs a permit provision", field="Consent.provision")
    return provision


def grant_consent_command(resource: Mapping[str, Any]) -> GrantConsent:
    """What a clinic POSTs: patient, recipient organization, purposes, data classes, period."""
    provision = _provision(resource)
    actors = [
        a
        for a in provision.get("actor", ())
        if "IRCP" in codes_in([a.get("role", {})], codes.PARTICIPATION_TYPE)
    ]
    if len(actors) != 1:
        raise Invalid(
            "name exactly one recipient organization (role IRCP)", field="Consent.provision.actor"
        )
    purposes = codes_in(provision.get("purpose"), codes.ACT_REASON)
    unknown = [p for p in purposes if p not in codes.PURPOSE_OF_CODE]
    if unknown:
        raise Invalid("purposes are TREAT or CAREMGT", field="Consent.provision.purpose")
    try:
        classes = frozenset(
            DataClass(c) for c in codes_in(provision.get("class"), codes.CS_DATA_CLASS)
        )
    except ValueError as error:
        raise Invalid("unknown data class", field="Consent.provision.class") from error
    period = provision.get("period", {})
    return GrantConsent(
        patient_id=ref_id(resource.get("patient"), "Patient", "Consent.patient"),
        recipient_organization_id=ref_id(
            actors[0].get("reference"), "Organization", "Consent.provision.actor[0].reference"
        ),
        purposes=frozenset(codes.PURPOSE_OF_CODE[p] for p in purposes),
        data_classes=classes,
        period_start=parse_instant(period["start"], "Consent.provision.period.start")
        if "start" in period
        else None,
        period_end=parse_instant(period["end"], "Consent.provision.period.end")
        if "end" in period
        else None,
        source_reference=source_of(resource),
    )


def from_fhir_consent(resource: Mapping[str, Any]) -> Consent:
    version, updated_at = meta_version(resource)
    command = grant_consent_command(resource)
    revocation = extension_value(resource, codes.EXT_REVOCATION, "extension") or []
    parts = {e["url"]: e.get("valueDateTime") or e.get("valueString") for e in revocation}
    organizations = resource.get("organization") or [{}]
    return Consent(
        id=UUID(resource["id"]),
        patient_id=command.patient_id,
        recorded_by_organization_id=ref_id(
            organizations[0], "Organization", "Consent.organization[0]"
        ),
        recipient_organization_id=command.recipient_organization_id,
        purposes=command.purposes,
        data_classes=command.data_classes,
        period_start=command.period_start or updated_at,
        period_end=command.period_end,
        revoked=bool(parts.get("at")),
        revoked_at=parse_instant(parts["at"], "Consent.extension") if parts.get("at") else None,
        revocation_reason=parts.get("reason"),
        source_reference=command.source_reference,
        version=version,
        created_at=parse_instant(resource["dateTime"], "Consent.dateTime"),
        updated_at=updated_at,
    )
