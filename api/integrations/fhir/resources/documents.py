"""ConsentForm (the signed consent form) ↔ FHIR DocumentReference (LOINC 59284-0 "Patient
Consent"), the document a Consent's `sourceReference` points at. One attachment: a URL, or the
file inline as base64 up to the size cap. Everything else the clinic sends is kept as sent."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.documentreference import DocumentReference

from api.domain.documents import MAX_CONTENT_BYTES, ConsentForm
from api.domain.errors import Invalid, TooLarge
from api.domain.principal import Principal
from api.domain.verbatim import kept_for, with_kept
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    codes_in,
    concept,
    finish,
    instant,
    meta,
    meta_version,
    parse_instant,
    ref,
    ref_id,
)
from api.integrations.fhir.resources.kept import Keeping, merge
from api.services.consent_forms import RecordConsentForm

_ATTACHMENT = "DocumentReference.content[0].attachment"
# The record's truth: its status, the patient, and who keeps it (the caller's organization).
# The content is read into the form and kept as sent besides its bytes, which live once, in
# the form itself. Everything else (author, description, context, date ...) is kept as sent.
KEEPING = Keeping(
    "DocumentReference", owned=frozenset({"status", "subject", "custodian", "content"})
)


def to_fhir_document_reference(form: ConsentForm) -> Json:
    kept = dict(kept_for(form.verbatim, "DocumentReference"))
    sent = kept.pop("content", None)
    organization = ref("Organization", form.organization_id)
    content = {
        "attachment": {
            "contentType": form.content_type,
            "url": form.url,
            "data": base64.b64encode(form.data).decode() if form.data else None,
            "size": form.size,
            "hash": form.sha1,
            "title": form.title,
        }
    }
    if sent:
        # As sent, with the bytes laid back in (and size and hash of them, if not sent).
        content = {**sent[0], "attachment": {**content["attachment"], **sent[0]["attachment"]}}
    resource = {
        "resourceType": "DocumentReference",
        "id": str(form.id),
        "meta": meta(form.version, form.updated_at),
        "status": "current",
        "docStatus": "final",
        "type": concept(codes.LOINC, codes.DOC_TYPE_LOINC_CONSENT, "Patient Consent"),
        "subject": ref("Patient", form.patient_id),
        "date": instant(form.created_at),
        "author": [organization],
        "custodian": organization,
        "content": [content],
    }
    return finish(DocumentReference, merge(resource, kept))


def _kept(resource: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept as sent: every element but the record's own, and the content without its
    bytes (they are stored once, with the form)."""
    kept = KEEPING.split(resource)
    content = dict(resource["content"][0])
    attachment = {k: v for k, v in content.get("attachment", {}).items() if k != "data"}
    kept["content"] = [{**content, "attachment": attachment}]
    return kept


def _data(attachment: Mapping[str, Any]) -> bytes | None:
    text = attachment.get("data")
    if text is None:
        return None
    if len(text) > (MAX_CONTENT_BYTES + 2) // 3 * 4:
        raise TooLarge(
            f"inline content is limited to {MAX_CONTENT_BYTES} bytes; link bigger files by url",
            field=f"{_ATTACHMENT}.data",
        )
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise Invalid("not base64", field=f"{_ATTACHMENT}.data") from error


def _check_elements(resource: Mapping[str, Any], principal: Principal | None) -> None:
    if resource.get("status") != "current":
        raise Invalid("a new consent form is current", field="DocumentReference.status")
    kinds = codes_in([resource["type"]], codes.LOINC) if "type" in resource else None
    if kinds is not None and codes.DOC_TYPE_LOINC_CONSENT not in kinds:
        raise Invalid("consent forms only (LOINC 59284-0)", field="DocumentReference.type")
    contents = resource.get("content") or []
    if len(contents) != 1:
        raise Invalid("exactly one content: the signed form", field="DocumentReference.content")
    if principal is not None and "custodian" in resource:
        where = "DocumentReference.custodian"
        if ref_id(resource["custodian"], "Organization", where) != principal.organization_id:
            raise Invalid("the organization keeping the form is the caller's own", field=where)


def record_consent_form_command(
    resource: Mapping[str, Any], principal: Principal | None = None
) -> RecordConsentForm:
    """What the patient's holding organization POSTs: the patient and one attachment."""
    _check_elements(resource, principal)
    attachment = resource["content"][0].get("attachment", {})
    if "subject" not in resource:
        raise Invalid("name the patient", field="DocumentReference.subject")
    data = _data(attachment)
    _check_integrity(attachment, data)
    return RecordConsentForm(
        patient_id=ref_id(resource.get("subject"), "Patient", "DocumentReference.subject"),
        content_type=attachment.get("contentType", ""),
        title=attachment.get("title"),
        url=attachment.get("url"),
        data=data,
        verbatim=with_kept({}, "DocumentReference", _kept(resource)),
    )


def _check_integrity(attachment: Mapping[str, Any], data: bytes | None) -> None:
    """A size or hash sent with inline data must describe that data."""
    if data is None:
        return
    if "size" in attachment and attachment["size"] != len(data):
        raise Invalid("does not match the data", field=f"{_ATTACHMENT}.size")
    if "hash" in attachment:
        digest = hashlib.sha1(data, usedforsecurity=False).digest()
        if attachment["hash"] != base64.b64encode(digest).decode():
            raise Invalid("is not the SHA-1 of the data", field=f"{_ATTACHMENT}.hash")


def from_fhir_document_reference(resource: Mapping[str, Any]) -> ConsentForm:
    """Rebuild a stored form from its FHIR form (what we store, nothing more)."""
    version, updated_at = meta_version(resource)
    command = record_consent_form_command(resource)
    return ConsentForm(
        id=UUID(resource["id"]),
        patient_id=command.patient_id,
        organization_id=ref_id(
            resource.get("custodian"), "Organization", "DocumentReference.custodian"
        ),
        content_type=command.content_type,
        title=command.title,
        url=command.url,
        data=command.data,
        version=version,
        created_at=parse_instant(resource["date"], "DocumentReference.date"),
        updated_at=updated_at,
        verbatim=command.verbatim,
    )
