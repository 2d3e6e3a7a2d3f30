"""What each capability needs: one SMART v2 scope table, used by both doors (and discovery).

The policy point (`api.services.policy`) re-exports `Capability` and `require`.
"""

from __future__ import annotations

from enum import StrEnum

from api.domain.errors import Forbidden
from api.domain.principal import Principal
from api.domain.scopes import Scope, any_satisfies, parse_scope
from api.domain.staff import StaffRole


class Capability(StrEnum):
    READ_ORGANIZATIONS = "read organizations"
    READ_PROGRAMS = "read peer programs"
    MANAGE_PROGRAMS = "manage peer programs"
    READ_LOCATIONS = "read program locations"
    MANAGE_LOCATIONS = "manage program locations"
    READ_SUPPORTERS = "read peer supporters"
    MANAGE_SUPPORTERS = "manage peer supporters"
    READ_PATIENTS = "read patients"
    REGISTER_PATIENTS = "register patients"
    READ_CONSENTS = "read consents"
    GRANT_CONSENT = "grant consent"
    REVOKE_CONSENT = "revoke consent"
    READ_REFERRALS = "read referrals"
    CREATE_REFERRAL = "create referrals"
    TRANSITION_REFERRAL = "move a referral through its workflow"
    ASSIGN_SUPPORTER = "assign a peer supporter"
    READ_SESSIONS = "read sessions and attendance"
    RECORD_SESSIONS = "record sessions and attendance"
    READ_OUTCOMES = "read outcome measures"
    RECORD_OUTCOMES = "record outcome measures"
    READ_PROCEDURES = "read delivered procedures"
    RECORD_PROCEDURES = "record delivered procedures"
    CORRECT_PROCEDURES = "correct delivered procedures"
    READ_CONSENT_FORMS = "read signed consent forms"
    RECORD_CONSENT_FORMS = "record signed consent forms"
    READ_AUDIT = "read the audit trail"
    READ_METRICS = "read de-identified program metrics"
    READ_SUBSCRIPTIONS = "read subscriptions"
    CREATE_SUBSCRIPTIONS = "create subscriptions"
    DELETE_SUBSCRIPTIONS = "delete subscriptions"
    MANAGE_TIMELINESS = "set the organization's first-contact targets"


def _scopes(*texts: str) -> tuple[Scope, ...]:
    parsed = tuple(parse_scope(text) for text in texts)
    assert all(parsed), texts
    return tuple(scope for scope in parsed if scope is not None)


# Each capability needs one of these SMART v2 scopes (on its FHIR counterpart). Both doors use it.
CAPABILITY_SCOPES: dict[Capability, tuple[Scope, ...]] = {
    Capability.READ_ORGANIZATIONS: _scopes("user/Organization.rs"),
    Capability.READ_PROGRAMS: _scopes("user/HealthcareService.rs"),
    Capability.MANAGE_PROGRAMS: _scopes("user/HealthcareService.cu"),
    Capability.READ_LOCATIONS: _scopes("user/Location.rs"),
    Capability.MANAGE_LOCATIONS: _scopes("user/Location.cu"),
    Capability.READ_SUPPORTERS: _scopes("user/PractitionerRole.rs"),
    Capability.MANAGE_SUPPORTERS: _scopes("user/PractitionerRole.cu"),
    Capability.READ_PATIENTS: _scopes("user/Patient.rs"),
    Capability.REGISTER_PATIENTS: _scopes("user/Patient.c"),
    Capability.READ_CONSENTS: _scopes("user/Consent.rs"),
    Capability.GRANT_CONSENT: _scopes("user/Consent.c"),
    Capability.REVOKE_CONSENT: _scopes("user/Consent.u"),
    Capability.READ_REFERRALS: _scopes("user/ServiceRequest.rs", "user/Task.rs"),
    Capability.CREATE_REFERRAL: _scopes("user/ServiceRequest.c", "user/Task.c"),
    Capability.TRANSITION_REFERRAL: _scopes("user/Task.u"),
    Capability.ASSIGN_SUPPORTER: _scopes("user/Task.u"),
    Capability.READ_SESSIONS: _scopes("user/Encounter.rs"),
    Capability.RECORD_SESSIONS: _scopes("user/Encounter.c"),
    Capability.READ_OUTCOMES: _scopes("user/Observation.rs", "user/QuestionnaireResponse.rs"),
    Capability.RECORD_OUTCOMES: _scopes("user/Observation.c", "user/QuestionnaireResponse.c"),
    Capability.READ_PROCEDURES: _scopes("user/Procedure.rs"),
    Capability.RECORD_PROCEDURES: _scopes("user/Procedure.c"),
    Capability.CORRECT_PROCEDURES: _scopes("user/Procedure.u"),
    Capability.READ_CONSENT_FORMS: _scopes("user/DocumentReference.rs"),
    Capability.RECORD_CONSENT_FORMS: _scopes("user/DocumentReference.c"),
    Capability.READ_AUDIT: _scopes("user/AuditEvent.rs"),
    Capability.READ_METRICS: _scopes("user/MeasureReport.rs"),
    Capability.READ_SUBSCRIPTIONS: _scopes("user/Subscription.rs"),
    Capability.CREATE_SUBSCRIPTIONS: _scopes("user/Subscription.c"),
    Capability.DELETE_SUBSCRIPTIONS: _scopes("user/Subscription.d"),
    # The organization's own settings: its coordinator's scope on Organization.
    Capability.MANAGE_TIMELINESS: _scopes("user/Organization.u"),
}


def allows(principal: Principal, capability: Capability) -> bool:
    return any(any_satisfies(principal.scopes, needed) for needed in CAPABILITY_SCOPES[capability])


def require(principal: Principal, capability: Capability) -> None:
    """Refuse unless a granted scope covers the capability."""
    if not allows(principal, capability):
        needed = CAPABILITY_SCOPES[capability][0]
        raise Forbidden(
            f"the token lacks the scope to {capability} ({needed})", needed_scope=str(needed)
        )


# What each staff role of the console may do; its scopes are the first of each capability's.
_READ_CARE = frozenset(
    {
        Capability.READ_ORGANIZATIONS,
        Capability.READ_PROGRAMS,
        Capability.READ_LOCATIONS,
        Capability.READ_SUPPORTERS,
        Capability.READ_PATIENTS,
        Capability.READ_CONSENTS,
        Capability.READ_REFERRALS,
        Capability.READ_SESSIONS,
        Capability.READ_OUTCOMES,
        Capability.READ_PROCEDURES,
        Capability.READ_CONSENT_FORMS,
    }
)
STAFF_CAPABILITIES: dict[StaffRole, frozenset[Capability]] = {
    StaffRole.COORDINATOR: _READ_CARE
    | {
        Capability.TRANSITION_REFERRAL,
        Capability.ASSIGN_SUPPORTER,
        Capability.CREATE_REFERRAL,  # escalation to a clinic
        Capability.GRANT_CONSENT,
        Capability.REVOKE_CONSENT,
        Capability.RECORD_CONSENT_FORMS,
        Capability.REGISTER_PATIENTS,
    },
    StaffRole.SUPPORTER: _READ_CARE
    | {
        Capability.TRANSITION_REFERRAL,
        Capability.CREATE_REFERRAL,  # the warm handoff to a clinic
        Capability.RECORD_SESSIONS,
        Capability.RECORD_OUTCOMES,
    },
    StaffRole.SUPERVISOR: frozenset(
        {
            Capability.READ_ORGANIZATIONS,
            Capability.READ_PROGRAMS,
            Capability.READ_SUPPORTERS,
            Capability.READ_METRICS,
        }
    ),
    StaffRole.CLINIC: frozenset(
        {
            Capability.READ_ORGANIZATIONS,
            Capability.READ_PROGRAMS,
            Capability.READ_PATIENTS,
            Capability.READ_CONSENTS,
            Capability.READ_REFERRALS,
            Capability.READ_PROCEDURES,
        }
    ),
}


def staff_scopes(role: StaffRole) -> tuple[Scope, ...]:
    """The SMART scopes a signed-in staff member of this role holds."""
    return tuple(CAPABILITY_SCOPES[c][0] for c in sorted(STAFF_CAPABILITIES[role]))
