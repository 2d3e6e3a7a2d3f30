"""DomainError → OperationOutcome and HTTP status: the one table for the FHIR door.

Messages are the domain's own (never PHI, never SQL detail); `issue.expression` points at the
FHIR element when the error names one.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.domain.errors import (
    Conflict,
    DomainError,
    Invalid,
    MalformedRequest,
    NotSupported,
    VersionConflict,
)
from api.integrations.fhir.resources.datatypes import Json


class BadRequest(MalformedRequest):
    """The request itself is malformed (JSON, structure, unknown element or search parameter)."""


class PreconditionFailed(Conflict):
    """`If-Match` named another version than the current one."""

    code = "PRECONDITION_FAILED"


class MethodNotAllowed(NotSupported):
    """An interaction this server does not offer for the resource type."""


@dataclass(frozen=True)
class Refusal:
    status: int
    issue_code: str  # http://hl7.org/fhir/issue-type


# code → (HTTP status, issue type). Unlisted codes are 500 "exception".
STATUS_OF: dict[str, Refusal] = {
    "INVALID_REQUEST": Refusal(400, "invalid"),
    "UNAUTHENTICATED": Refusal(401, "login"),
    "FORBIDDEN": Refusal(403, "forbidden"),
    "CONSENT_REQUIRED": Refusal(403, "suppressed"),
    "CONSENT_REVOKED": Refusal(403, "suppressed"),
    "NOT_FOUND": Refusal(404, "not-found"),
    "NOT_SUPPORTED": Refusal(405, "not-supported"),
    "TOO_LARGE": Refusal(413, "too-long"),
    "UNSUPPORTED_MEDIA_TYPE": Refusal(415, "not-supported"),
    "CONFLICT": Refusal(409, "conflict"),
    "IDEMPOTENCY_KEY_IN_USE": Refusal(409, "conflict"),  # retryable: the first is still running
    "PRECONDITION_FAILED": Refusal(412, "conflict"),
    "INVALID_INPUT": Refusal(422, "invalid"),
    "INVALID_TRANSITION": Refusal(422, "business-rule"),
    "SUPPORTER_UNAVAILABLE": Refusal(422, "business-rule"),
    "RATE_LIMITED": Refusal(429, "throttled"),
    "UNAVAILABLE": Refusal(503, "transient"),
}
INTERNAL = Refusal(500, "exception")

# Service input names (the GraphQL door's) → FHIR element paths, per resource type.
_FIELD_PATHS: dict[str, dict[str, str]] = {
    "ServiceRequest": {
        "reasonText": "ServiceRequest.reasonCode",
        "sharedDataClasses": "ServiceRequest.extension",
        "programId": "ServiceRequest.performer",
        "performerOrganizationId": "ServiceRequest.performer",
        "consentIds": "ServiceRequest.supportingInfo",
        "reasonCodes": "ServiceRequest.reasonCode",
    },
    "Task": {"reason": "Task.statusReason", "expectedVersion": "Task.meta.versionId"},
    "Consent": {
        "sourceReference": "Consent.sourceReference",
        "purposes": "Consent.provision.purpose",
        "dataClasses": "Consent.provision.class",
        "periodEnd": "Consent.provision.period.end",
    },
    "Patient": {
        "givenName": "Patient.name.given",
        "familyName": "Patient.name.family",
        "birthDate": "Patient.birthDate",
        "phone": "Patient.telecom",
        "email": "Patient.telecom",
        "preferredLanguage": "Patient.communication.language",
    },
    "QuestionnaireResponse": {
        "itemAnswers": "QuestionnaireResponse.item",
        "administeredAt": "QuestionnaireResponse.authored",
        "referralId": "QuestionnaireResponse.basedOn",
    },
    "Encounter": {"note": "Encounter.extension", "endsAt": "Encounter.period.end"},
    "Procedure": {
        "referralId": "Procedure.basedOn",
        "patientId": "Procedure.subject",
        "performerOrganizationId": "Procedure.performer",
        "supporterId": "Procedure.performer",
        "codes": "Procedure.code.coding",
        "categories": "Procedure.category",
        "performedStart": "Procedure.performedPeriod.start",
        "performedEnd": "Procedure.performedPeriod.end",
        "units": "Procedure.extension",
    },
    "DocumentReference": {
        "contentType": "DocumentReference.content[0].attachment.contentType",
        "url": "DocumentReference.content[0].attachment.url",
        "data": "DocumentReference.content[0].attachment.data",
        "title": "DocumentReference.content[0].attachment.title",
    },
}


def _expression(field: str, resource_type: str | None) -> str | None:
    if not field:
        return None
    if field[:1].isupper():
        return field  # already a FHIR path
    paths = _FIELD_PATHS.get(resource_type or "", {})
    head, _, rest = field.partition("[")
    if head in paths:
        return paths[head] + (f"[{rest}" if rest else "")
    if field == "identifiers" or field.startswith("identifiers["):
        return "Patient.identifier" + field.removeprefix("identifiers")
    return f"{resource_type}.{field}" if resource_type else field


def refusal_of(error: DomainError, *, if_match: bool = False) -> Refusal:
    if isinstance(error, VersionConflict) and if_match:
        return STATUS_OF["PRECONDITION_FAILED"]
    return STATUS_OF.get(error.code, INTERNAL)


def _issue(code: str, issue_code: str, text: str, expression: str | None) -> Json:
    issue: Json = {
        "severity": "error",
        "code": issue_code,
        "details": {"coding": [{"system": ERROR_SYSTEM, "code": code}], "text": text},
    }
    if expression:
        issue["expression"] = [expression]
    return issue


ERROR_SYSTEM = "https://peerbridge.example.org/fhir/CodeSystem/error"


def operation_outcome(
    error: DomainError, *, resource_type: str | None = None, if_match: bool = False
) -> tuple[int, Json]:
    """The HTTP status and OperationOutcome for a refusal."""
    found = refusal_of(error, if_match=if_match)
    if isinstance(error, Invalid):
        issues = [
            _issue(
                error.code,
                found.issue_code,
                detail.message,
                _expression(detail.field, resource_type),
            )
            for detail in error.details
        ]
    else:
        issues = [_issue(error.code, found.issue_code, str(error), None)]
    return found.status, {"resourceType": "OperationOutcome", "issue": issues}


def internal_error() -> tuple[int, Json]:
    return 500, {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "fatal", "code": "exception", "details": {"text": "internal error"}}
        ],
    }


def information(text: str) -> Json:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "details": {"text": text}}],
    }
