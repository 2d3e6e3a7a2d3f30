"""A patient's consents as the signed-in person may see them, with the coordinator's forms:
record a consent with its signed form uploaded, revoke one. A thin door over the consent
services: every rule (who records, who revokes, what a form may be) is theirs."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID

from starlette.datastructures import UploadFile
from starlette.responses import Response

from api.console.web import Staff, redirect, staff_page
from api.domain.consents import Consent, DataClass, Purpose
from api.domain.documents import CONTENT_TYPES, MAX_CONTENT_BYTES, form_id_in, source_reference_of
from api.domain.errors import DomainError, Invalid, InvalidDetail, NotFound
from api.domain.patients import Patient
from api.domain.staff import StaffRole
from api.services import consent_forms, consent_revocations, consents, organizations, patients
from api.services.policy import Capability, allows, utcnow
from api.services.transactions import SharedTransaction

_READERS = (StaffRole.COORDINATOR, StaffRole.SUPPORTER, StaffRole.CLINIC)

# The form's fields, as the page labels them.
LABELS = {
    "recipient_id": "Recipients",
    "purposes": "Purposes",
    "data_classes": "Data shared",
    "period_start": "Starts",
    "period_end": "Ends",
    "signed_form": "Signed form",
    "reason": "Reason",
}
# The services' names of the same inputs (their Invalid details name these).
_FIELD_OF = {
    "recipientOrganizationId": "recipient_id",
    "purposes": "purposes",
    "dataClasses": "data_classes",
    "periodStart": "period_start",
    "periodEnd": "period_end",
    "data": "signed_form",
    "contentType": "signed_form",
    "title": "signed_form",
    "url": "signed_form",
    "sourceReference": "signed_form",
    "reason": "reason",
}
DATA_CLASS_LABELS = {
    DataClass.DEMOGRAPHICS: "Demographics (name, birth date, contact)",
    DataClass.REFERRAL: "Referrals",
    DataClass.SESSIONS: "Sessions and attendance",
    DataClass.OUTCOMES: "Outcome measures (PHQ-9, GAD-7)",
    DataClass.SUBSTANCE_USE: "Substance use records (42 CFR Part 2)",
}
PURPOSE_LABELS = {
    Purpose.TREATMENT: "Treatment",
    Purpose.CARE_COORDINATION: "Care coordination",
}


def patient_id_of(staff: Staff) -> UUID:
    try:
        return UUID(staff.request.path_params["patient_id"])
    except ValueError:
        raise NotFound("Patient", staff.request.path_params["patient_id"]) from None


@dataclass(frozen=True)
class ConsentRow:
    consent: Consent
    recipient: str
    recorded_by: str
    form_id: UUID | None  # the signed form recorded here that the consent cites


async def _rows(
    staff: Staff, patient_id: UUID, names: Mapping[UUID, str]
) -> list[ConsentRow] | None:
    """The consents the caller is party to, newest first; None when the services show none."""
    try:
        found = await consents.list_consents(staff.uow(), staff.principal, patient_id)
    except DomainError:
        return None
    return [
        ConsentRow(
            c,
            names.get(c.recipient_organization_id, "another organization"),
            names.get(c.recorded_by_organization_id, "another organization"),
            form_id_in(c.source_reference),
        )
        for c in sorted(found, key=lambda c: (c.created_at, c.id), reverse=True)
    ]


async def _organization_names(staff: Staff) -> dict[UUID, str]:
    listed = await organizations.list_organizations(staff.uow(), staff.principal, limit=200)
    return {o.id: o.name for o in listed}


async def render_patient(
    staff: Staff,
    patient_id: UUID,
    *,
    status_code: int = 200,
    notice: str | None = None,
    error: str | None = None,
    field_errors: Mapping[str, str] | None = None,
    sent: Mapping[str, Any] | None = None,
) -> Response:
    (patient,) = await patients.get_patients(staff.uow(), staff.principal, [patient_id])
    if isinstance(patient, NotFound):
        raise patient
    holds_record = isinstance(patient, Patient) and patient.held_by(
        staff.principal.organization_id
    )
    names = await _organization_names(staff)
    recipients = [
        (organization_id, name)
        for organization_id, name in sorted(names.items(), key=lambda item: item[1])
        if organization_id != staff.principal.organization_id
    ]
    return staff.page(
        "patient.html",
        status_code,
        patient_id=patient_id,
        patient_name=(
            f"{patient.given_name} {patient.family_name}" if isinstance(patient, Patient) else None
        ),
        consents=await _rows(staff, patient_id, names),
        holds_record=holds_record,
        may_record=holds_record and staff.role is StaffRole.COORDINATOR,
        may_revoke=staff.role is StaffRole.COORDINATOR,
        may_download=allows(staff.principal, Capability.READ_CONSENT_FORMS),
        recipients=recipients,
        purposes=PURPOSE_LABELS,
        data_classes=DATA_CLASS_LABELS,
        labels=LABELS,
        accept=",".join(sorted(CONTENT_TYPES - {"text/plain"})),
        max_megabytes=MAX_CONTENT_BYTES // (1024 * 1024),
        notice=notice,
        error=error,
        field_errors=dict(field_errors or {}),
        sent=dict(sent or {"purposes": list(Purpose)}),
        submission=secrets.token_urlsafe(16),
        now=utcnow(),
    )


_NOTICES = {"recorded": "Consent recorded with its signed form.", "revoked": "Consent revoked."}


@staff_page(*_READERS)
async def patient_page(staff: Staff) -> Response:
    done = staff.request.query_params.get("done", "")
    return await render_patient(staff, patient_id_of(staff), notice=_NOTICES.get(done))


# --- recording a consent ----------------------------------------------------------------------


def _uuids(staff: Staff, name: str) -> list[UUID]:
    sent = _all(staff, name)
    try:
        return [UUID(value) for value in sent]
    except ValueError:
        raise Invalid("choose from the list", field=name) from None


def _all(staff: Staff, name: str) -> list[str]:
    assert staff.form is not None
    return [v for v in staff.form.getlist(name) if isinstance(v, str)]


E = TypeVar("E", Purpose, DataClass)


def _choices(staff: Staff, name: str, kind: type[E]) -> frozenset[E]:
    try:
        return frozenset(kind(value) for value in _all(staff, name))
    except ValueError:
        raise Invalid("choose from the list", field=name) from None


def _day(staff: Staff, name: str) -> datetime | None:
    sent = staff.field(name)
    if not sent:
        return None
    try:
        return datetime.combine(date.fromisoformat(sent), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise Invalid("must be a date (YYYY-MM-DD)", field=name) from None


async def _signed_form(staff: Staff) -> UploadFile:
    assert staff.form is not None
    upload = staff.form.get("signed_form")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Invalid("choose the file of the signed form", field="signed_form")
    return upload


@dataclass(frozen=True)
class _Consenting:
    recipients: list[UUID]
    purposes: frozenset[Purpose]
    data_classes: frozenset[DataClass]
    period_start: datetime | None
    period_end: datetime | None


def _read(staff: Staff) -> _Consenting:
    """The form's values, or every field it could not read (named)."""
    problems: list[InvalidDetail] = []
    values: dict[str, Any] = {}
    readers: dict[str, Any] = {
        "recipient_id": lambda: _uuids(staff, "recipient_id"),
        "purposes": lambda: _choices(staff, "purposes", Purpose),
        "data_classes": lambda: _choices(staff, "data_classes", DataClass),
        "period_start": lambda: _day(staff, "period_start"),
        "period_end": lambda: _day(staff, "period_end"),
    }
    for name, read in readers.items():
        try:
            values[name] = read()
        except Invalid as error:
            problems += error.details
    if "recipient_id" in values and not values["recipient_id"]:
        problems.append(InvalidDetail("recipient_id", "choose at least one organization"))
    if problems:
        raise Invalid(problems)
    return _Consenting(
        values["recipient_id"],
        values["purposes"],
        values["data_classes"],
        values["period_start"],
        values["period_end"],
    )


async def _record(staff: Staff, patient_id: UUID) -> None:
    """The form and one consent per recipient citing it: all recorded, or none."""
    asked = _read(staff)
    upload = await _signed_form(staff)
    data = await upload.read()
    outer = staff.uow()
    # The form sent twice (a double click, a resend) replays its first recording: a second
    # form would be a second source, so the same grant would record a second consent.
    submission = hashlib.sha256(staff.field("submission").encode()).hexdigest()[:32]
    async with outer:
        shared = SharedTransaction(outer)
        form = await consent_forms.record_consent_form(
            shared,
            staff.principal,
            consent_forms.RecordConsentForm(
                patient_id=patient_id,
                content_type=upload.content_type or "application/octet-stream",
                title=upload.filename,
                data=data,
            ),
            idempotency_key=f"console-consent-form:{submission}"
            if staff.field("submission")
            else None,
        )
        for recipient in asked.recipients:
            await consents.grant_consent(
                shared,
                staff.principal,
                consents.GrantConsent(
                    patient_id=patient_id,
                    recipient_organization_id=recipient,
                    purposes=asked.purposes,
                    data_classes=asked.data_classes,
                    period_start=asked.period_start,
                    period_end=asked.period_end,
                    source_reference=source_reference_of(form.id),
                ),
            )
        await outer.commit()


def field_errors(error: Invalid) -> dict[str, str]:
    """Per form field, what is wrong with it (the services' field names mapped to the form's)."""
    named: dict[str, str] = {}
    for detail in error.details:
        field = _FIELD_OF.get(detail.field, detail.field)
        message = detail.message
        if error.code == "TOO_LARGE" and field == "signed_form":
            message = f"the file is larger than the {MAX_CONTENT_BYTES // (1024 * 1024)} MB limit"
        named[field] = f"{named[field]}; {message}" if field in named else message
    return named


def _sent(staff: Staff) -> dict[str, Any]:
    """What the person chose, to show the form again as they left it (not the file)."""
    return {
        name: _all(staff, name) for name in ("recipient_id", "purposes", "data_classes")
    } | {name: staff.field(name) for name in ("period_start", "period_end")}


@staff_page(StaffRole.COORDINATOR)
async def record_consent(staff: Staff) -> Response:
    patient_id = patient_id_of(staff)
    try:
        await _record(staff, patient_id)
    except Invalid as error:
        named = field_errors(error)
        return await render_patient(
            staff,
            patient_id,
            status_code=413 if error.code == "TOO_LARGE" else 422,
            error="The consent was not recorded: "
            + "; ".join(f"{LABELS.get(f, f)}: {m}" for f, m in named.items()),
            field_errors=named,
            sent=_sent(staff),
        )
    except DomainError as error:
        if isinstance(error, NotFound) and error.resource_type == "Patient":
            raise
        return await render_patient(
            staff,
            patient_id,
            status_code=403 if error.code in ("FORBIDDEN", "NOT_FOUND") else 409,
            error=f"The consent was not recorded: {error.message}",
            sent=_sent(staff),
        )
    return redirect(f"/console/patients/{patient_id}?done=recorded")


# --- revoking one -----------------------------------------------------------------------------


def _consent_id_of(staff: Staff) -> UUID:
    try:
        return UUID(staff.request.path_params["consent_id"])
    except ValueError:
        raise NotFound("Consent", staff.request.path_params["consent_id"]) from None


@staff_page(StaffRole.COORDINATOR)
async def revoke_consent(staff: Staff) -> Response:
    patient_id = patient_id_of(staff)
    try:
        revoked = await consent_revocations.revoke_consent(
            staff.uow(),
            staff.principal,
            _consent_id_of(staff),
            reason=staff.field("reason") or None,
        )
    except Invalid as error:
        return await render_patient(
            staff,
            patient_id,
            status_code=422,
            error="The consent was not revoked: "
            + "; ".join(f"{LABELS.get(f, f)}: {m}" for f, m in field_errors(error).items()),
        )
    except DomainError as error:
        if error.code in ("NOT_FOUND", "FORBIDDEN"):
            raise
        return await render_patient(
            staff,
            patient_id,
            status_code=409,
            error=f"The consent was not revoked: {error.message}",
        )
    return redirect(f"/console/patients/{revoked.patient_id}?done=revoked")


# --- the signed form itself -------------------------------------------------------------------

_EXTENSIONS = {
    "application/pdf": "pdf",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/tiff": "tiff",
    "text/plain": "txt",
}


@staff_page(*_READERS)
async def signed_form(staff: Staff) -> Response:
    """The file of a signed form, to whoever the services let read it (audited as they read)."""
    try:
        form_id = UUID(staff.request.path_params["form_id"])
    except ValueError:
        raise NotFound("DocumentReference", staff.request.path_params["form_id"]) from None
    (form,) = await consent_forms.get_consent_forms(staff.uow(), staff.principal, [form_id])
    if isinstance(form, DomainError):
        raise form
    if form.data is None:
        raise NotFound("DocumentReference", form_id)  # kept elsewhere: the page links its url
    extension = _EXTENSIONS.get(form.content_type, "bin")
    return Response(
        form.data,
        media_type=form.content_type,
        headers={
            # A generic file name: the title may name the patient.
            "content-disposition": f'attachment; filename="signed-form.{extension}"',
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
            "content-security-policy": "default-src 'none'; sandbox",
        },
    )
