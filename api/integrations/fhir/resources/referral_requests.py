"""What a requester sends — a ServiceRequest, then its Task — read into commands.

Every element is modelled, kept as sent (`SERVICE_REQUEST` / `TASK` in `referrals.py` say which
the record owns) or the request is refused naming it. References PeerBridge relies on are
checked: the subject, the performing organization and program, the consents cited, the Task's
focus, patient and owner. A requester may be the organization itself or one of its
practitioners (PractitionerRole or Practitioner, kept as sent); the requesting organization is
always the caller's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from api.domain.errors import Forbidden, Invalid, InvalidDetail
from api.domain.referrals import Referral, ReferralStatus
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import Json, codes_in, ref_id
from api.integrations.fhir.resources.referrals import (
    SERVICE_REQUEST,
    TASK,
    codings_of,
    identifiers_of,
    performers_of,
    priority_of,
    reasons_of,
    shared_classes_of,
    to_fhir_task,
)
from api.services.referrals import DEFAULT_SHARED, CreateReferral

_PRACTITIONERS = ("PractitionerRole", "Practitioner")
# `Type/id`, `Type/id/_history/v` or an absolute URL ending so.
_TYPED = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def reference_type(reference: Mapping[str, Any]) -> str | None:
    """The resource type a Reference names, by its `type` or its literal `reference`."""
    if isinstance(reference.get("type"), str):
        return str(reference["type"]).rsplit("/", 1)[-1]
    found = _TYPED.search(str(reference.get("reference", "")))
    return found.group(1) if found else None


def check_requester(reference: Mapping[str, Any] | None, organization_id: UUID, where: str) -> None:
    """The requesting organization is `organization_id`; a practitioner is kept as sent."""
    if reference is None:
        return
    kind = reference_type(reference)
    if kind == "Organization":
        if ref_id(reference, "Organization", where) != organization_id:
            raise Forbidden("the requester is the caller's own organization")
    elif kind not in _PRACTITIONERS:
        raise Invalid(
            "an Organization (the caller's own), PractitionerRole or Practitioner", field=where
        )


def _refusals(resource: Json) -> list[InvalidDetail]:
    problems = []
    if resource.get("intent") != "order":
        problems.append(InvalidDetail("ServiceRequest.intent", "a referral is an order"))
    if resource.get("status", "active") != "active":
        problems.append(InvalidDetail("ServiceRequest.status", "a new referral is active"))
    if resource.get("doNotPerform") is True:
        problems.append(
            InvalidDetail(
                "ServiceRequest.doNotPerform",
                "PeerBridge carries orders to perform a service; it cannot honour a prohibition",
            )
        )
    if not codings_of([resource.get("code") or {}]):
        problems.append(
            InvalidDetail(
                "ServiceRequest.code",
                "name the service ordered with a SNOMED CT coding (peer support or a "
                "behavioural-health service)",
            )
        )
    for index, extension in enumerate(resource.get("extension", ())):
        if extension.get("url") == codes.EXT_ESCALATED_FROM:
            problems.append(
                InvalidDetail(
                    f"ServiceRequest.extension[{index}]",
                    "an escalation is linked by escalateReferral (GraphQL), not sent",
                )
            )
    return problems


def _performers(resource: Json) -> dict[str, UUID]:
    performers = performers_of(resource)
    if "PractitionerRole" in performers:
        raise Invalid("the performer assigns its supporter", field="ServiceRequest.performer")
    return performers


def _consent_ids(resource: Json) -> tuple[UUID, ...]:
    return tuple(
        ref_id(info, "Consent", f"ServiceRequest.supportingInfo[{index}]")
        for index, info in enumerate(resource.get("supportingInfo", ()))
        if reference_type(info) == "Consent"
    )


def _patient_id(resource: Json) -> UUID:
    return ref_id(resource.get("subject"), "Patient", "ServiceRequest.subject")


def create_referral_command(resource: Json, organization_id: UUID) -> CreateReferral:
    """A ServiceRequest as the command that creates its referral (the Task comes next)."""
    kept = SERVICE_REQUEST.split(resource)
    check_requester(resource.get("requester"), organization_id, "ServiceRequest.requester")
    problems = _refusals(resource)
    checked: dict[str, Any] = {}
    for name, read in (
        ("patient", _patient_id),
        ("performers", _performers),
        ("consents", _consent_ids),
        ("classes", shared_classes_of),
    ):
        try:
            checked[name] = read(resource)
        except Invalid as error:
            problems.extend(error.details)
    if problems:
        raise Invalid(problems)
    performers = checked["performers"]
    reason_codes, reason_text = reasons_of(resource)
    return CreateReferral(
        patient_id=checked["patient"],
        performer_organization_id=performers["Organization"],
        priority=priority_of(resource, "ServiceRequest.priority"),
        program_id=performers.get("HealthcareService"),
        reason_codes=reason_codes,
        reason_text=reason_text,
        shared_data_classes=checked["classes"] or DEFAULT_SHARED,
        code=codings_of([resource["code"]]),
        categories=codings_of(resource.get("category", ())),
        identifiers=identifiers_of(resource),
        consent_ids=checked["consents"],
        with_task=False,
        verbatim={"ServiceRequest": kept},
    )


def task_kept(resource: Json, referral: Referral) -> dict[str, Any]:
    """The elements of a new Task to keep as sent, after checking it against its referral."""
    kept = TASK.split(resource)
    problems: list[InvalidDetail] = []
    if resource.get("intent") != "order":
        problems.append(InvalidDetail("Task.intent", "a referral Task is an order"))
    if "fulfill" not in codes_in([resource.get("code", {})], codes.TASK_CODE):
        problems.append(InvalidDetail("Task.code", "a referral Task has code fulfill"))
    if resource.get("status") != ReferralStatus.REQUESTED.value:
        problems.append(InvalidDetail("Task.status", "a new referral Task is requested"))
    ours = to_fhir_task(referral, redacted=True)  # the record's own elements, none kept
    for name, message in (
        ("statusReason", "a new Task has no status reason"),
        ("lastModified", "the server records when the Task changes"),
        ("output", "the outputs are the Procedures the performer records"),
    ):
        if name in resource:
            problems.append(InvalidDetail(f"Task.{name}", message))
    if "businessStatus" in resource and resource["businessStatus"] != ours.get("businessStatus"):
        problems.append(
            InvalidDetail(
                "Task.businessStatus",
                "follows the status: leave it out (a requested Task is BSeR 2.0 'Service "
                "Request Created')",
            )
        )
    if resource.get("priority", referral.priority.value) != referral.priority.value:
        problems.append(InvalidDetail("Task.priority", "must equal the ServiceRequest's"))
    for index, extension in enumerate(resource.get("extension", ())):
        if extension.get("url") == codes.EXT_ASSIGNED_SUPPORTER:
            problems.append(
                InvalidDetail(f"Task.extension[{index}]", "the performer assigns its supporter")
            )
    requester = resource.get("requester")
    checks = [
        ("Task.for", resource.get("for"), "Patient", referral.patient_id),
        ("Task.owner", resource.get("owner"), "Organization", referral.performer_organization_id),
    ]
    if requester is not None and reference_type(requester) == "Organization":
        checks.append(
            ("Task.requester", requester, "Organization", referral.requester_organization_id)
        )
    else:  # one of the requester's practitioners, kept as sent
        check_requester(requester, referral.requester_organization_id, "Task.requester")
    for where, reference, kind, expected in checks:
        try:
            if reference is not None and ref_id(reference, kind, where) != expected:
                raise Invalid("does not match the focus ServiceRequest", field=where)
        except Invalid as error:
            problems.extend(error.details)
    if problems:
        raise Invalid(problems)
    return kept
