"""Code systems, extension URLs and the code tables every mapper shares (one place, both ways)."""

from __future__ import annotations

from api.domain.consents import DataClass, Purpose
from api.domain.organizations import OrganizationKind
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.referrals import Direction, ReferralStatus
from api.domain.sessions import AttendanceStatus

BASE = "https://peerbridge.example.org/fhir"

# --- external code systems ---------------------------------------------------------------------
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NUCC = "http://nucc.org/provider-taxonomy"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NPI = "http://hl7.org/fhir/sid/us-npi"
BCP47 = "urn:ietf:bcp:47"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_POLICY = "http://terminology.hl7.org/CodeSystem/consentpolicycodes"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
SECURITY_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
EXTRA_SECURITY_ROLE = "http://dicom.nema.org/resources/ontology/DCM"
DOC_TYPE_LOINC_CONSENT = "59284-0"  # Patient Consent
GRAVITY_TEMP = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
PART2_POLICY_URI = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"

# --- our code systems and extensions -------------------------------------------------------------
CS_DIRECTION = f"{BASE}/CodeSystem/referral-direction"
CS_DATA_CLASS = f"{BASE}/CodeSystem/data-class"
CS_PROGRAM_KIND = f"{BASE}/CodeSystem/program-kind"
CS_DELIVERY_MODE = f"{BASE}/CodeSystem/delivery-mode"
CS_ORG_KIND = f"{BASE}/CodeSystem/organization-kind"
CS_LIVED_EXPERIENCE = f"{BASE}/CodeSystem/lived-experience"
CS_CERTIFICATION = f"{BASE}/CodeSystem/certification-subtype"
CS_SESSION_FORMAT = f"{BASE}/CodeSystem/session-format"
CS_OPERATION = f"{BASE}/CodeSystem/operation"
ID_CERTIFICATION = f"{BASE}/NamingSystem/certification-number"
ID_CLIENT = f"{BASE}/NamingSystem/client-id"
QUESTIONNAIRE = f"{BASE}/Questionnaire"


def ext(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


EXT_SHARED_DATA_CLASS = ext("shared-data-class")
EXT_ESCALATED_FROM = ext("escalated-from")
EXT_ASSIGNED_SUPPORTER = ext("assigned-supporter")
EXT_CAPACITY = ext("capacity")
EXT_ACCEPTING_REFERRALS = ext("accepting-referrals")
EXT_SUBSTANCE_USE_FOCUS = ext("substance-use-focus")
EXT_DELIVERY_MODE = ext("delivery-mode")
EXT_MAX_CASELOAD = ext("max-caseload")
EXT_SUPERVISOR = ext("supervisor")
EXT_CERT_STATUS = ext("certification-status")
EXT_CERT_JURISDICTION = ext("certification-jurisdiction")
EXT_CERT_VERIFIED = ext("certification-last-verified")
EXT_REVOCATION = ext("consent-revocation")
EXT_BILLING = ext("billing")
EXT_ATTENDANCE = ext("attendance")
EXT_NOTE = ext("attendance-note")
EXT_PROGRAM = ext("peer-program")
EXT_FACILITATOR = ext("facilitator")
EXT_SESSION_CAPACITY = ext("session-capacity")
EXT_TOPIC = ext("session-topic")
EXT_AUDIT_DETAIL = ext("audit-detail-code")

# --- tables ------------------------------------------------------------------------------------
REFERRAL_CODE: dict[Direction, tuple[str, str]] = {
    Direction.CLINIC_TO_PEER: ("461481000124109", "Referral to peer support"),
    Direction.PEER_TO_CLINIC: ("390866009", "Referral to mental health team"),
}
PEER_SPECIALIST = ("175T00000X", "Peer Specialist")
H0038_DISPLAY = "Self-help/peer services, per 15 minutes"

ORG_TYPE_OF: dict[OrganizationKind, tuple[str, str]] = {
    OrganizationKind.CLINIC: ("prov", "Healthcare Provider"),
    OrganizationKind.PEER_ORGANIZATION: ("cg", "Community Group"),
}

PROGRAM_SNOMED: dict[ProgramKind, tuple[str, str]] = {
    ProgramKind.SUPPORT_GROUP: ("711281004", "Support group"),
}

PURPOSE_CODE: dict[Purpose, tuple[str, str]] = {
    Purpose.TREATMENT: ("TREAT", "treatment"),
    Purpose.CARE_COORDINATION: ("CAREMGT", "care management"),
}
PURPOSE_OF_CODE = {code: purpose for purpose, (code, _) in PURPOSE_CODE.items()}

DATA_CLASS_DISPLAY: dict[DataClass, str] = {
    DataClass.DEMOGRAPHICS: "Demographics",
    DataClass.REFERRAL: "Referral",
    DataClass.SESSIONS: "Sessions and attendance",
    DataClass.OUTCOMES: "Outcome measures",
    DataClass.SUBSTANCE_USE: "Substance use disorder records (42 CFR Part 2)",
}

# ServiceRequest.status for each Task status (the Task carries the fine-grained one).
SERVICE_REQUEST_STATUS: dict[ReferralStatus, str] = {
    ReferralStatus.REQUESTED: "active",
    ReferralStatus.ACCEPTED: "active",
    ReferralStatus.IN_PROGRESS: "active",
    ReferralStatus.ON_HOLD: "on-hold",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.REJECTED: "revoked",
    ReferralStatus.FAILED: "revoked",
    ReferralStatus.CANCELLED: "revoked",
}

# Encounter.status and the BSeR business status recorded for each attendance status.
ENCOUNTER_STATUS: dict[AttendanceStatus, str] = {
    AttendanceStatus.ATTENDED: "finished",
    AttendanceStatus.NO_SHOW: "cancelled",
    AttendanceStatus.CANCELLED: "cancelled",
}
ATTENDANCE_BSER: dict[AttendanceStatus, tuple[str, str]] = {
    AttendanceStatus.ATTENDED: ("5.1.4", "Service Request Event Completed"),
    AttendanceStatus.NO_SHOW: ("5.1.2", "Service Request Event Unattended"),
    AttendanceStatus.CANCELLED: ("5.1.3", "Service Request Event Cancelled"),
}
DELIVERY_MODE_DISPLAY: dict[DeliveryMode, str] = {
    DeliveryMode.IN_PERSON: "In person",
    DeliveryMode.VIRTUAL: "Virtual",
    DeliveryMode.PHONE: "Phone",
}

# meta.security labels
PART2_LABELS: tuple[dict[str, str], ...] = (
    {"system": ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"},
    {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"},
)
REDACTED_LABEL = {"system": OBSERVATION_VALUE, "code": "REDACTED", "display": "redacted"}
