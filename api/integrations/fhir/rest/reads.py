"""Read FHIR resources by id through the services (scope, tenancy, consent, audit apply).

`read_many` answers for many ids at once and leaves out what the caller may not see (used by
searches and `_include`); `read` answers for one id and raises why it may not be seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

from api.domain.errors import DomainError, NotFound
from api.domain.sessions import Attendance
from api.integrations.fhir.resources.audit import to_fhir_audit_event
from api.integrations.fhir.resources.consents import to_fhir_consent
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.resources.documents import to_fhir_document_reference
from api.integrations.fhir.resources.locations import to_fhir_location
from api.integrations.fhir.resources.measures import (
    to_fhir_observation,
    to_fhir_questionnaire_response,
)
from api.integrations.fhir.resources.organizations import to_fhir_organization
from api.integrations.fhir.resources.patients import to_fhir_patient
from api.integrations.fhir.resources.procedures import to_fhir_procedure
from api.integrations.fhir.resources.programs import to_fhir_healthcare_service
from api.integrations.fhir.resources.referrals import to_fhir_service_request, to_fhir_task
from api.integrations.fhir.resources.sessions import (
    to_fhir_attendance_encounter,
    to_fhir_session_encounter,
)
from api.integrations.fhir.resources.supporters import (
    to_fhir_practitioner,
    to_fhir_practitioner_role,
)
from api.integrations.fhir.rest.context import FhirContext
from api.services import (
    audit_trail,
    care_reads,
    consent_forms,
    consents,
    locations,
    organizations,
    patients,
    procedures,
    programs,
    referrals,
    sessions,
    supporters,
)
from api.services.procedures import ProcedureView
from api.services.referrals import ReferralView

T = TypeVar("T")
Outcome = Json | DomainError


def referral_resource(resource_type: str, view: ReferralView, outputs: Sequence[UUID] = ()) -> Json:
    redacted = view.withheld is not None
    if resource_type == "ServiceRequest":
        return to_fhir_service_request(view.referral, redacted=redacted)
    return to_fhir_task(view.referral, redacted=redacted, outputs=outputs)


def procedure_resource(view: ProcedureView) -> Json:
    return to_fhir_procedure(view.procedure, redacted=view.withheld is not None)


async def task_outputs(
    ctx: FhirContext, referral_ids: Sequence[UUID]
) -> dict[UUID, tuple[UUID, ...]]:
    """The Procedures each referral's Task lists as output."""
    return await procedures.outputs_of(ctx.new_uow(), ctx.principal, referral_ids)


async def _referrals(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Outcome]:
    found = await referrals.get_referrals(ctx.new_uow(), ctx.principal, ids)
    outputs: dict[UUID, tuple[UUID, ...]] = {}
    if resource_type == "Task":
        seen = [v.referral.id for v in found if isinstance(v, ReferralView)]
        outputs = await task_outputs(ctx, seen)
    out: list[Outcome] = []
    for ident, item in zip(ids, found, strict=True):
        if isinstance(item, DomainError):
            out.append(NotFound(resource_type, ident) if isinstance(item, NotFound) else item)
        else:
            out.append(referral_resource(resource_type, item, outputs.get(item.referral.id, ())))
    return out


async def _encounters(ctx: FhirContext, ids: Sequence[UUID]) -> list[Outcome]:
    """Session Encounters, and attendance Encounters (one per attendee, under consent)."""
    found = await sessions.get_sessions(ctx.new_uow(), ctx.principal, ids)
    missing = [i for i, s in zip(ids, found, strict=True) if s is None]
    attendance = (
        dict(
            zip(
                missing,
                await sessions.get_attendance(ctx.new_uow(), ctx.principal, missing),
                strict=True,
            )
        )
        if missing
        else {}
    )
    session_ids = sorted({a.session_id for a in attendance.values() if isinstance(a, Attendance)})
    attended = {
        s.id: s
        for s in await sessions.get_sessions(ctx.new_uow(), ctx.principal, session_ids)
        if s is not None
    }
    out: list[Outcome] = []
    for ident, session in zip(ids, found, strict=True):
        item = attendance.get(ident)
        if session is not None:
            out.append(to_fhir_session_encounter(session))
        elif isinstance(item, Attendance):
            out.append(to_fhir_attendance_encounter(item, attended[item.session_id]))
        elif isinstance(item, DomainError) and not isinstance(item, NotFound):
            out.append(item)
        else:
            out.append(NotFound("Encounter", ident))
    return out


def _mapped(
    resource_type: str,
    ids: Sequence[UUID],
    found: Sequence[T | None | DomainError],
    convert: Callable[[T], Json | None],
) -> list[Outcome]:
    out: list[Outcome] = []
    for ident, item in zip(ids, found, strict=True):
        if item is None:
            out.append(NotFound(resource_type, ident))
        elif isinstance(item, DomainError):
            out.append(NotFound(resource_type, ident) if isinstance(item, NotFound) else item)
        else:
            resource = convert(item)
            out.append(resource if resource is not None else NotFound(resource_type, ident))
    return out


# The resource types `read_outcomes` answers for.
READABLE = frozenset(
    {
        "ServiceRequest", "Task", "Encounter", "Patient", "Consent", "Procedure",
        "DocumentReference", "AuditEvent", "HealthcareService", "Practitioner",
        "PractitionerRole", "Organization", "Observation", "QuestionnaireResponse", "Location",
    }
)  # fmt: skip


async def read_outcomes(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Outcome]:
    """One resource or one refusal per id, in order."""
    uow, who = ctx.new_uow(), ctx.principal
    loaders: dict[str, Callable[[], Awaitable[list[Outcome]]]] = {
        "ServiceRequest": lambda: _referrals(ctx, "ServiceRequest", ids),
        "Task": lambda: _referrals(ctx, "Task", ids),
        "Encounter": lambda: _encounters(ctx, ids),
    }
    if resource_type in loaders:
        return await loaders[resource_type]()
    if resource_type == "Patient":
        return _mapped(
            resource_type, ids, await patients.get_patients(uow, who, ids), to_fhir_patient
        )
    if resource_type == "Consent":
        found = await consents.get_consents(uow, who, ids)
        return _mapped(resource_type, ids, found, lambda c: to_fhir_consent(c, now=ctx.now))
    if resource_type == "Procedure":
        found_procedures = await procedures.get_procedures(uow, who, ids)
        return _mapped(resource_type, ids, found_procedures, procedure_resource)
    if resource_type == "DocumentReference":
        found_forms = await consent_forms.get_consent_forms(uow, who, ids)
        return _mapped(resource_type, ids, found_forms, to_fhir_document_reference)
    if resource_type == "AuditEvent":
        found_events = await audit_trail.get_audit_events(uow, who, ids)
        return _mapped(resource_type, ids, found_events, to_fhir_audit_event)
    if resource_type == "HealthcareService":
        found_programs = await programs.get_programs(uow, who, ids)
        return _mapped(resource_type, ids, found_programs, to_fhir_healthcare_service)
    if resource_type == "Location":
        found_locations = await locations.get_locations(uow, who, ids)
        return _mapped(resource_type, ids, found_locations, to_fhir_location)
    if resource_type in ("Practitioner", "PractitionerRole"):
        found_supporters = await supporters.get_supporters(uow, who, ids)
        convert = (
            to_fhir_practitioner if resource_type == "Practitioner" else to_fhir_practitioner_role
        )
        return _mapped(resource_type, ids, found_supporters, convert)
    if resource_type == "Organization":
        found_orgs = await organizations.get_organizations(uow, who, ids)
        return _mapped(resource_type, ids, found_orgs, to_fhir_organization)
    if resource_type in ("Observation", "QuestionnaireResponse"):
        found_measures = await care_reads.get_outcome_measures(uow, who, ids)
        measure_convert = (
            to_fhir_observation
            if resource_type == "Observation"
            else to_fhir_questionnaire_response
        )
        return _mapped(resource_type, ids, found_measures, measure_convert)
    raise NotFound(resource_type, ",".join(map(str, ids)))


async def read(ctx: FhirContext, resource_type: str, resource_id: UUID) -> Json:
    (result,) = await read_outcomes(ctx, resource_type, [resource_id])
    if isinstance(result, DomainError):
        raise result
    return result


async def read_many(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Json]:
    """The resources the caller may see, in order, silently leaving out the others."""
    if not ids:
        return []
    unique = list(dict.fromkeys(ids))
    return [
        r for r in await read_outcomes(ctx, resource_type, unique) if not isinstance(r, DomainError)
    ]
