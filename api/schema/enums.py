"""GraphQL enums for every coded value: the domain's own enums, exposed under their names.

The members' Python names become the GraphQL values (`IN_PROGRESS`); resolvers hand the domain
values straight through, so no mapping table can drift.
"""

from __future__ import annotations

import strawberry

from api.domain.audit import AuditAction, AuditOutcome
from api.domain.consents import ConsentStatus, DataClass, Purpose
from api.domain.locations import LocationMode, LocationStatus
from api.domain.organizations import OrganizationKind
from api.domain.outcomes import Instrument
from api.domain.patients import Gender
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.referrals import Direction, Priority, ReferralStatus, Role, Transition
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.domain.supporters import (
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    SupervisorKind,
)
from api.services.filters import ReferralBox

ENUMS = tuple(
    strawberry.enum(enum, description=description)
    for enum, description in (
        (OrganizationKind, "A clinic or a peer-support organization."),
        (ProgramKind, "The kind of peer program (FHIR HealthcareService.type)."),
        (DeliveryMode, "How a program or session is delivered."),
        (LocationStatus, "FHIR Location.status: active, suspended or inactive."),
        (LocationMode, "FHIR Location.mode: one place (instance) or a kind of place."),
        (LivedExperience, "Lived-experience tags used to match supporters and participants."),
        (CertificationSubtype, "What a peer-specialist certification covers."),
        (CertificationStatus, "Standing of a certification with its issuing body."),
        (SupervisorKind, "Peer or clinical supervision (Medicaid peer services require one)."),
        (Gender, "FHIR administrative-gender."),
        (DataClass, "Classes of patient data a consent and a referral name."),
        (Purpose, "Purposes of use a consent permits."),
        (ConsentStatus, "A consent is active, revoked (FHIR inactive) or expired."),
        (Direction, "Clinic to peer program, or peer program to clinic."),
        (Priority, "FHIR request-priority."),
        (ReferralStatus, "FHIR Task.status (Gravity referral workflow)."),
        (Role, "The caller's side of a referral."),
        (Transition, "A move along the referral workflow."),
        (ReferralBox, "Received (inbox), sent (outbox) or both."),
        (SessionFormat, "Group or one-on-one session."),
        (AttendanceStatus, "Attended, no-show (BSeR Unattended) or cancelled."),
        (Instrument, "Outcome instrument: PHQ-9, GAD-7 and locally coded scales."),
        (AuditAction, "FHIR AuditEvent.action: C, R, U, D, E."),
        (AuditOutcome, "Whether the audited access succeeded or was refused."),
    )
)
