"""Read FHIR resources by id through the services (scope, tenancy, consent, audit apply).

`read_many` answers for many ids at once and leaves out what the caller may not see (used by
searches and `_include`); `read` answers for one id and raises why it may not be seen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar
from uuid import UUID

from api.domain.errors import DomainError, NotFound
from api.domain.referrals import ReferralStatus
from api.domain.sessions import Attendance
from api.integrations.fhir.consents import to_fhir_consent, to_fhir_consent_document
from api.integrations.fhir.context import FhirContext
from api.integrations.fhir.datatypes import Json
from api.integrations.fhir.measures import to_fhir_observation, to_fhir_questionnaire_response
from api.integrations.fhir.organizations import to_fhir_organization
from api.integrations.fhir.patients import to_fhir_patient
from api.integrations.fhir.programs import to_fhir_healthcare_service
from api.integrations.fhir.referrals import (
    to_fhir_procedure,
    to_fhir_service_request,
    to_fhir_task,
)
from api.integrations.fhir.sessions import to_fhir_session_encounter
from api.integrations.fhir.supporters import to_fhir_practitioner, to_fhir_practitioner_role
from api.services import (
    care_reads,
    consents,
    organizations,
    patients,
    programs,
    referrals,
    sessions,
    supporters,
)
from api.services.referrals import ReferralView

T = TypeVar("T")
Outcome = Json | DomainError


def referral_resource(
    resource_type: str, view: ReferralView, attendance: Sequence[Attendance] = ()
) -> Json | None:
    redacted = view.withheld is not None
    if resource_type == "ServiceRequest":
        return to_fhir_service_request(view.referral, redacted=redacted)
    if resource_type == "Task":
        return to_fhir_task(view.referral, redacted=redacted)
    return to_fhir_procedure(view.referral, attendance)


async def delivered(ctx: FhirContext, views: Sequence[ReferralView]) -> list[Attendance]:
    """The attendance behind completed referrals' Procedures, as far as the caller may see it."""
    patient_ids = sorted({v.referral.patient_id for v in views})
    if not patient_ids:
        return []
    try:
        found = await sessions.attendance_for_patients(ctx.new_uow(), ctx.principal, patient_ids)
    except DomainError:
        return []  # no sessions scope: the Procedure still stands, without billed units
    return [a for rows in found for a in rows]


async def _referrals(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Outcome]:
    found = await referrals.get_referrals(ctx.new_uow(), ctx.principal, ids)
    attendance: list[Attendance] = []
    if resource_type == "Procedure":
        attendance = await delivered(
            ctx,
            [v for v in found if isinstance(v, ReferralView) and v.withheld is None],
        )
    out: list[Outcome] = []
    for ident, item in zip(ids, found, strict=True):
        if isinstance(item, DomainError):
            out.append(NotFound(resource_type, ident) if isinstance(item, NotFound) else item)
            continue
        if resource_type == "Procedure" and item.referral.status is not ReferralStatus.COMPLETED:
            out.append(NotFound("Procedure", ident))
            continue
        resource = referral_resource(resource_type, item, attendance)
        out.append(resource if resource is not None else NotFound(resource_type, ident))
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


async def read_outcomes(ctx: FhirContext, resource_type: str, ids: Sequence[UUID]) -> list[Outcome]:
    """One resource or one refusal per id, in order."""
    uow, who = ctx.new_uow(), ctx.principal
    loaders: dict[str, Callable[[], Awaitable[list[Outcome]]]] = {
        "ServiceRequest": lambda: _referrals(ctx, "ServiceRequest", ids),
        "Task": lambda: _referrals(ctx, "Task", ids),
        "Procedure": lambda: _referrals(ctx, "Procedure", ids),
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
    if resource_type == "DocumentReference":
        found = await consents.get_consents(uow, who, ids)
        return _mapped(resource_type, ids, found, to_fhir_consent_document)
    if resource_type == "HealthcareService":
        found_programs = await programs.get_programs(uow, who, ids)
        return _mapped(resource_type, ids, found_programs, to_fhir_healthcare_service)
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
    if resource_type == "Encounter":
        found_sessions = await sessions.get_sessions(uow, who, ids)
        return _mapped(resource_type, ids, found_sessions, to_fhir_session_encounter)
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
