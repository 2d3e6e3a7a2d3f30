"""Read FHIR resources by id through the services (scope, tenancy, consent, audit apply).

`read_many` answers for many ids at once and leaves out what the caller may not see (used by
searches and `_include`); `read` answers for one id and raises why it may not be seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

from api.domain.errors import DomainError, NotFound
from api.domain.principal import Principal
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
from api.services.repositories import NO_RELATIONS, ReferralRelations, UnitOfWork

T = TypeVar("T")
Outcome = Json | DomainError


# A Task lists the Procedures recorded for its referral: read with the referral, as ids.
TASK_RELATIONS = ReferralRelations(outputs=True)


def referral_resource(
    resource_type: str, view: ReferralView, outputs: Sequence[UUID] | None = None
) -> Json:
    """The referral's ServiceRequest, or its Task listing `outputs` (by default those read with
    the referral under `TASK_RELATIONS`)."""
    redacted = view.withheld is not None
    if resource_type == "ServiceRequest":
        return to_fhir_service_request(view.referral, redacted=redacted)
    listed = view.outputs if outputs is None else outputs
    return to_fhir_task(view.referral, redacted=redacted, outputs=listed or ())


async def task_outputs(
    ctx: FhirContext, referral_ids: Sequence[UUID]
) -> dict[UUID, tuple[UUID, ...]]:
    """The Procedures each referral's Task lists as output (for a referral not read with
    `TASK_RELATIONS`, e.g. as a write answers it)."""
    return await procedures.outputs_of(ctx.new_uow(), ctx.principal, referral_ids)


def procedure_resource(view: ProcedureView) -> Json:
    return to_fhir_procedure(view.procedure, redacted=view.withheld is not None)


async def _referrals(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Outcome]:
    relations = TASK_RELATIONS if resource_type == "Task" else NO_RELATIONS
    found = await referrals.get_referrals(ctx.new_uow(), ctx.principal, ids, relations)
    out: list[Outcome] = []
    for ident, item in zip(ids, found, strict=True):
        if isinstance(item, DomainError):
            out.append(NotFound(resource_type, ident) if isinstance(item, NotFound) else item)
        else:
            out.append(referral_resource(resource_type, item))
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


Loader = Callable[[FhirContext, Sequence[UUID]], Awaitable[list[Outcome]]]


def _loader(
    resource_type: str,
    fetch: Callable[
        [UnitOfWork, Principal, Sequence[UUID]], Awaitable[Sequence[T | None | DomainError]]
    ],
    convert: Callable[[T, FhirContext], Json | None],
) -> Loader:
    """Read through one service call and map each record (or say why it may not be seen)."""

    async def load(ctx: FhirContext, ids: Sequence[UUID]) -> list[Outcome]:
        found = await fetch(ctx.new_uow(), ctx.principal, ids)
        return _mapped(resource_type, ids, found, lambda item: convert(item, ctx))

    return load


def _plain(to_fhir: Callable[[T], Json]) -> Callable[[T, FhirContext], Json]:
    return lambda item, _ctx: to_fhir(item)


# One loader per resource type a read, a search by `_id` or an `_include` may name.
_LOADERS: dict[str, Loader] = {
    "ServiceRequest": lambda ctx, ids: _referrals(ctx, "ServiceRequest", ids),
    "Task": lambda ctx, ids: _referrals(ctx, "Task", ids),
    "Encounter": _encounters,
    "Patient": _loader("Patient", patients.get_patients, _plain(to_fhir_patient)),
    "Consent": _loader(
        "Consent", consents.get_consents, lambda c, ctx: to_fhir_consent(c, now=ctx.now)
    ),
    "Procedure": _loader("Procedure", procedures.get_procedures, _plain(procedure_resource)),
    "DocumentReference": _loader(
        "DocumentReference",
        consent_forms.get_consent_forms,
        _plain(to_fhir_document_reference),
    ),
    "AuditEvent": _loader("AuditEvent", audit_trail.get_audit_events, _plain(to_fhir_audit_event)),
    "HealthcareService": _loader(
        "HealthcareService", programs.get_programs, _plain(to_fhir_healthcare_service)
    ),
    "Location": _loader("Location", locations.get_locations, _plain(to_fhir_location)),
    "Practitioner": _loader(
        "Practitioner", supporters.get_supporters, _plain(to_fhir_practitioner)
    ),
    "PractitionerRole": _loader(
        "PractitionerRole", supporters.get_supporters, _plain(to_fhir_practitioner_role)
    ),
    "Organization": _loader(
        "Organization", organizations.get_organizations, _plain(to_fhir_organization)
    ),
    "Observation": _loader(
        "Observation", care_reads.get_outcome_measures, _plain(to_fhir_observation)
    ),
    "QuestionnaireResponse": _loader(
        "QuestionnaireResponse",
        care_reads.get_outcome_measures,
        _plain(to_fhir_questionnaire_response),
    ),
}

# The resource types `read_outcomes` answers for.
READABLE = frozenset(_LOADERS)


async def read_outcomes(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Outcome]:
    """One resource or one refusal per id, in order."""
    load = _LOADERS.get(resource_type)
    if load is None:
        raise NotFound(resource_type, ",".join(map(str, ids)))
    return await load(ctx, ids)


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
