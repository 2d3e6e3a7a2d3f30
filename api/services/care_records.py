"""Shared rules for recording data about a participant: the organization must know them (care
data) or hold their record (consents and their forms)."""

from __future__ import annotations

from uuid import UUID

from api.domain.audit import AuditAction
from api.domain.errors import Forbidden, Invalid, NotFound
from api.domain.patients import Patient
from api.domain.principal import Principal
from api.domain.referrals import Referral
from api.services.policy import Refusal, party_to, patients_beyond_caseload, refuse_one
from api.services.repositories import UnitOfWork


async def patient_in_care(
    uow: UnitOfWork, principal: Principal, patient_id: UUID, *, operation: str, resource_type: str
) -> Patient:
    """The patient, if the caller holds their record or is party to one of their referrals (and,
    held to a caseload, the patient is in it)."""
    (patient,) = await uow.patients.get_many([patient_id])
    if patient is None or await patients_beyond_caseload(
        uow,
        principal,
        [patient_id],
        action=AuditAction.CREATE,
        resource_type=resource_type,
        operation=operation,
    ):
        raise NotFound("Patient", patient_id)
    if patient.held_by(principal.organization_id):
        return patient
    parties = await uow.patients.referral_organizations([patient.id])
    if principal.organization_id in parties.get(patient.id, ()):
        return patient
    raise await refuse_one(
        uow,
        principal,
        Refusal(
            Forbidden("the participant has no referral with your organization"),
            patient.id,
            NotFound("Patient", patient_id),
            resource_type,
            None,
        ),
        action=AuditAction.CREATE,
        operation=operation,
    )


async def patient_held(
    uow: UnitOfWork,
    principal: Principal,
    patient_id: UUID,
    *,
    refused: str,
    operation: str,
    resource_type: str,
) -> Patient:
    """The patient, if the caller's organization holds their record; else the refusal (why:
    `refused`), audited as a refused create."""
    (patient,) = await uow.patients.get_many([patient_id])
    if patient is None:
        raise NotFound("Patient", patient_id)
    if patient.held_by(principal.organization_id):
        return patient
    raise await refuse_one(
        uow,
        principal,
        Refusal(
            Forbidden(refused), patient.id, NotFound("Patient", patient_id), resource_type, None
        ),
        action=AuditAction.CREATE,
        operation=operation,
    )


async def referral_of(
    uow: UnitOfWork, principal: Principal, patient: Patient, referral_id: UUID | None
) -> Referral | None:
    """The referral a record about `patient` cites (None when it cites none): it must be one
    of this participant's, with the caller's organization a party to it."""
    if referral_id is None:
        return None
    (referral,) = await uow.referrals.get_many([referral_id])
    if (
        referral is None
        or referral.patient_id != patient.id
        or party_to(principal, referral) is None
    ):
        raise Invalid(
            "not a referral of this participant with your organization", field="referralId"
        )
    return referral
