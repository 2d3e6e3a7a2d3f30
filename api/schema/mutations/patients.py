"""Patient registration by the organization that holds the record."""

from __future__ import annotations

from datetime import date

import strawberry

from api.domain.patients import Gender, PatientIdentifier
from api.schema.context import Info
from api.schema.patient import Patient
from api.services import patients
from api.services.patients import RegisterPatient


@strawberry.input(description="A business identifier, e.g. the clinic's MRN.")
class IdentifierInput:
    system: str
    value: str


@strawberry.input(description="Register a participant; your organization holds the record.")
class RegisterPatientInput:
    given_name: str
    family_name: str
    identifiers: list[IdentifierInput] = strawberry.field(default_factory=list)
    birth_date: date | None = None
    gender: Gender = Gender.UNKNOWN
    phone: str | None = None
    email: str | None = None
    preferred_language: str | None = None
    idempotency_key: str | None = None

    def to_command(self) -> RegisterPatient:
        return RegisterPatient(
            identifiers=tuple(PatientIdentifier(i.system, i.value) for i in self.identifiers),
            given_name=self.given_name,
            family_name=self.family_name,
            birth_date=self.birth_date,
            gender=self.gender,
            phone=self.phone,
            email=self.email,
            preferred_language=self.preferred_language,
        )


@strawberry.type
class PatientMutations:
    @strawberry.mutation(description="Register a participant (FHIR Patient).")
    async def register_patient(self, info: Info, input: RegisterPatientInput) -> Patient | None:
        patient = await patients.register_patient(
            info.context.unit_of_work(),
            info.context.principal,
            input.to_command(),
            idempotency_key=input.idempotency_key,
        )
        return Patient.from_domain(patient)
