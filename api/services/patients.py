"""Patients: registration by the organization that holds the record, consented reads by others."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from uuid import UUID

from api.domain import text
from api.domain.audit import AuditAction
from api.domain.consents import DataClass
from api.domain.errors import Conflict, DomainError, Invalid, InvalidDetail
from api.domain.patients import Gender, Patient, PatientIdentifier
from api.domain.principal import Principal
from api.domain.text import texts_problems
from api.domain.verbatim import NOTHING_KEPT, Verbatim
from api.services import idempotency
from api.services.policy import (
    Capability,
    Disclosure,
    audit,
    consent_scope,
    disclose_each,
    hidden_beyond_caseload,
    require,
    utcnow,
)
from api.services.repositories import UnitOfWork

_DEMOGRAPHICS = frozenset({DataClass.DEMOGRAPHICS})


def disclosure_of(patient: Patient) -> Disclosure:
    """What reading a patient's record discloses: the demographics its holder recorded."""
    return Disclosure(patient.id, patient.managing_organization_id, _DEMOGRAPHICS)


@dataclass(frozen=True)
class RegisterPatient:
    identifiers: tuple[PatientIdentifier, ...]
    given_name: str
    family_name: str
    birth_date: date | None = None
    gender: Gender = Gender.UNKNOWN
    phone: str | None = None
    email: str | None = None
    preferred_language: str | None = None
    # The source document's elements, kept as sent (opaque here: the door's format).
    verbatim: Verbatim = field(default_factory=lambda: NOTHING_KEPT)


def _check(command: RegisterPatient) -> None:
    problems = [
        InvalidDetail(field, "must not be empty")
        for field, value in (("givenName", command.given_name), ("familyName", command.family_name))
        if not value.strip()
    ]
    seen: dict[PatientIdentifier, int] = {}
    for index, identifier in enumerate(command.identifiers):
        if not identifier.system.strip() or not identifier.value.strip():
            problems.append(InvalidDetail(f"identifiers[{index}]", "needs a system and a value"))
        elif identifier in seen:
            problems.append(
                InvalidDetail(f"identifiers[{index}]", f"repeats identifiers[{seen[identifier]}]")
            )
        seen.setdefault(identifier, index)
    if command.birth_date is not None and command.birth_date > date.today():
        problems.append(InvalidDetail("birthDate", "must not be in the future"))
    problems += texts_problems(
        [
            ("givenName", command.given_name, text.NAME),
            ("familyName", command.family_name, text.NAME),
            ("phone", command.phone, text.SHORT),
            ("email", command.email, text.EMAIL),
            ("preferredLanguage", command.preferred_language, text.LANGUAGE),
            *(
                check
                for index, identifier in enumerate(command.identifiers)
                for check in (
                    (f"identifiers[{index}].system", identifier.system, text.URI),
                    (f"identifiers[{index}].value", identifier.value, text.SHORT),
                )
            ),
        ]
    )
    if problems:
        raise Invalid(problems)


async def register_patient(
    uow: UnitOfWork,
    principal: Principal,
    command: RegisterPatient,
    *,
    idempotency_key: str | None = None,
) -> Patient:
    """Register a participant; the caller's organization becomes the managing organization.

    Identifiers are unique per managing organization: a duplicate of one of the caller's own
    patients is a conflict, while a record another organization holds is neither found nor
    revealed (a refusal would tell the caller that the other organization has the patient)."""
    require(principal, Capability.REGISTER_PATIENTS)
    _check(command)
    async with uow:
        written = await idempotency.once(
            uow,
            principal,
            idempotency_key,
            "registerPatient",
            command,
            load=uow.patients.get_many,
            resource_type="Patient",
            write=lambda: _register(uow, principal, command),
            patient_of=lambda patient: patient.id,
        )
        await uow.commit()
    return written


async def _register(uow: UnitOfWork, principal: Principal, command: RegisterPatient) -> Patient:
    for identifier in command.identifiers:
        held = await uow.patients.find_by_identifier(identifier)
        if any(p.held_by(principal.organization_id) for p in held):
            raise Conflict(
                "your organization already registered a patient with this identifier"
            )
    now = utcnow()
    patient = await uow.patients.add(
        Patient(
            id=uuid.uuid4(),
            managing_organization_id=principal.organization_id,
            identifiers=command.identifiers,
            given_name=command.given_name,
            family_name=command.family_name,
            birth_date=command.birth_date,
            gender=command.gender,
            phone=command.phone,
            email=command.email,
            preferred_language=command.preferred_language,
            version=1,
            created_at=now,
            updated_at=now,
            verbatim=command.verbatim,
        )
    )
    uow.record(
        audit(
            principal,
            action=AuditAction.CREATE,
            operation="registerPatient",
            resource_type="Patient",
            resource_id=patient.id,
            patient_id=patient.id,
        )
    )
    return patient


async def get_patients(
    uow: UnitOfWork, principal: Principal, ids: Sequence[UUID]
) -> list[Patient | DomainError]:
    """Each patient, or the reason the caller may not see it (not found, no consent)."""
    require(principal, Capability.READ_PATIENTS)
    now = utcnow()
    async with uow:
        read = await uow.patients.get_many_with_consents(ids, consent_scope(principal))
        found = await hidden_beyond_caseload(
            uow,
            principal,
            ids,
            [None if item is None else item[0] for item in read],
            patient_of=lambda patient: patient.id,
            resource_type="Patient",
            operation="readPatient",
        )
        results = await disclose_each(
            uow,
            principal,
            ids,
            found,
            resource_type="Patient",
            operation="readPatient",
            disclosure=disclosure_of,
            now=now,
            joined=[() if item is None else item[1] for item in read],
        )
        await uow.commit()
    return results


async def find_patients(
    uow: UnitOfWork, principal: Principal, identifier: PatientIdentifier
) -> list[Patient]:
    """The patients with this identifier (system|value) disclosed to the caller: its own one,
    and other organizations' ones under consent."""
    require(principal, Capability.READ_PATIENTS)
    async with uow:
        found = await uow.patients.find_by_identifier(identifier)
    if not found:
        return []
    results = await get_patients(uow, principal, [p.id for p in found])
    return [result for result in results if isinstance(result, Patient)]
