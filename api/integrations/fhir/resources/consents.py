"""Consent ↔ FHIR R4 Consent (`patient-privacy`); its source is the signed form recorded here
(`sourceReference` → DocumentReference, see documents.py) or an attachment (a URL, or the
signed form inline).

What the clinic sent is kept as sent (category, dateTime, policy, the provision, the source
attachment ...) and read into the consent's terms (consent_provisions.py). Revoked or expired =
status `inactive`; the revocation itself is an extension. A consent recorded through GraphQL
has nothing kept: its FHIR form is built from the record.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from fhir.resources.R4B.consent import Consent as FhirConsent

from api.domain.consents import Consent, ConsentStatus, DataClass
from api.domain.documents import form_id_in, source_reference_of
from api.domain.errors import Invalid
from api.domain.principal import Principal
from api.domain.verbatim import kept_for, with_kept
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.consent_provisions import consent_terms
from api.integrations.fhir.resources.datatypes import (
    Json,
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
from api.integrations.fhir.resources.kept import Keeping, merge
from api.services.consents import GrantConsent

# The record's truth: its status, and the references PeerBridge checks (the patient, the
# organization recording it, a form recorded here). Everything else is kept as sent.
KEEPING = Keeping(
    "Consent",
    owned=frozenset({"status", "patient", "organization", "sourceReference"}),
    extensions=frozenset({codes.EXT_REVOCATION}),
)


def to_fhir_consent(consent: Consent, *, now: datetime) -> Json:
    kept = kept_for(consent.verbatim, "Consent")
    resource = _from_record(consent, now)
    if "policy" in kept or "policyRule" in kept:
        # The legal basis is the one the clinic stated, never one added beside it.
        resource.pop("policy")
        resource.pop("policyRule")
    return finish(FhirConsent, merge(resource, kept))


def _from_record(consent: Consent, now: datetime) -> Json:
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
    return {
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
                coding(codes.ACT_REASON, *codes.PURPOSE_CODE[p]) for p in sorted(consent.purposes)
            ],
            "class": [
                coding(codes.CS_DATA_CLASS, c.value, codes.DATA_CLASS_DISPLAY[c]) for c in classes
            ],
            "securityLabel": [dict(label) for label in codes.PART2_LABELS] if part2 else [],
        },
    }


def _source(consent: Consent) -> Json:
    """A form recorded here is referenced; any other source (a URL) is an attachment."""
    form_id = form_id_in(consent.source_reference)
    if form_id is not None:
        return {"sourceReference": ref("DocumentReference", form_id)}
    if consent.source_reference:
        return {"sourceAttachment": {"url": consent.source_reference}}
    return {}


def source_of(resource: Mapping[str, Any]) -> str | None:
    """`sourceReference` → the recorded form; `sourceAttachment` → its URL, if it has one (an
    inline form is kept as sent with the consent)."""
    if "sourceReference" in resource:
        form_id = ref_id(
            resource["sourceReference"], "DocumentReference", "Consent.sourceReference"
        )
        return source_reference_of(form_id)
    attachment = resource.get("sourceAttachment") or {}
    if "data" in attachment:
        try:
            base64.b64decode(attachment["data"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise Invalid("not base64", field="Consent.sourceAttachment.data") from error
    url = attachment.get("url")
    return url if isinstance(url, str) else None


def _check_recorder(resource: Mapping[str, Any], principal: Principal | None) -> None:
    """The organization managing the consent, when named, is the one recording it."""
    for index, reference in enumerate(resource.get("organization", ())):
        where = f"Consent.organization[{index}]"
        organization = ref_id(reference, "Organization", where)
        if principal is not None and organization != principal.organization_id:
            raise Invalid("the organization recording a consent is the caller's own", field=where)


def grant_consent_command(
    resource: Mapping[str, Any], principal: Principal | None = None
) -> GrantConsent:
    """What a clinic POSTs: the patient and a provision naming the recipient organization,
    purposes, data classes and period; every element but the record's own is kept as sent."""
    _check_recorder(resource, principal)
    if "policy" not in resource and "policyRule" not in resource:
        raise Invalid(
            "state the consent's legal basis: policyRule or policy (FHIR invariant ppc-1)",
            field="Consent.policyRule",
        )
    terms = consent_terms(resource)
    return GrantConsent(
        patient_id=ref_id(resource.get("patient"), "Patient", "Consent.patient"),
        recipient_organization_id=terms.recipient_organization_id,
        purposes=terms.purposes,
        data_classes=terms.data_classes,
        period_start=terms.period_start,
        period_end=terms.period_end,
        source_reference=source_of(resource),
        verbatim=with_kept({}, "Consent", KEEPING.split(resource)),
    )


def from_fhir_consent(resource: Mapping[str, Any]) -> Consent:
    """Rebuild a stored Consent from its FHIR form (what it states is kept, as on a create)."""
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
        verbatim=command.verbatim,
    )
