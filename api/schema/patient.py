"""Patient (participant). Every field beyond the id is PHI, disclosed only as the services
decide (the holding organization, or a consent naming the caller for `demographics`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.domain import patients as domain
from api.domain.errors import DomainError, NotFound
from api.domain.patients import Gender
from api.integrations.fhir.resources.patients import to_fhir_patient
from api.schema.connection import Connection
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import parse_id, to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization

if TYPE_CHECKING:
    from api.schema.attendance import Attendance
    from api.schema.consent import Consent
    from api.schema.outcome import OutcomeMeasure
    from api.schema.referral import Referral, ReferralFilterInput


@strawberry.type(description="A business identifier, e.g. a clinic's MRN (system + value).")
class Identifier:
    system: str
    value: str


@strawberry.federation.type(
    keys=["id"],
    description="A participant (FHIR Patient). Demographics are consent-gated: a field you may "
    "not see is null with the reason as an error at its path.",
)
class Patient(Node):
    id: strawberry.ID
    patient_id: strawberry.Private[UUID]
    record: strawberry.Private[domain.Patient | None]
    withheld: strawberry.Private[DomainError | None] = None

    @classmethod
    def from_domain(cls, patient: domain.Patient) -> Patient:
        return cls(id=to_id(patient.id), patient_id=patient.id, record=patient)

    @classmethod
    async def resolve_reference(cls, info: Info, id: strawberry.ID) -> Patient:
        """Another subgraph's patient: always an object, so the gateway keeps that subgraph's
        fields; what PeerBridge may not disclose is null with its error (as for a stub)."""
        patient_id = parse_id(id, "id")
        try:
            return await load_patient(info, patient_id)
        except DomainError as error:
            return cls(id=to_id(patient_id), patient_id=patient_id, record=None, withheld=error)

    def _disclosed(self) -> domain.Patient:
        if self.record is None:
            raise self.withheld or NotFound("Patient", self.patient_id)
        return self.record

    @strawberry.field(description="Every identifier, in the order sent (FHIR: with its type).")
    def identifiers(self) -> list[Identifier] | None:
        return [Identifier(system=i.system, value=i.value) for i in self._disclosed().identifiers]

    @strawberry.field(
        description="The current name's given names, joined with a space (current: not `old`, "
        "period not ended, official or usual first). The `fhir` field has every name as sent."
    )
    def given_name(self) -> str | None:
        return self._disclosed().given_name

    @strawberry.field(description="The current name's family name (see givenName).")
    def family_name(self) -> str | None:
        return self._disclosed().family_name

    @strawberry.field(
        description="The full birth date; null when only a year or year-month was sent (the "
        "`fhir` field has it as sent)."
    )
    def birth_date(self) -> date | None:
        return self._disclosed().birth_date

    @strawberry.field
    def gender(self) -> Gender | None:
        return self._disclosed().gender

    @strawberry.field(description="The current phone of best rank; `fhir` has every telecom.")
    def phone(self) -> str | None:
        return self._disclosed().phone

    @strawberry.field(description="The current email of best rank; `fhir` has every telecom.")
    def email(self) -> str | None:
        return self._disclosed().email

    @strawberry.field(
        description="BCP 47 code of the language marked preferred, else of the first one sent."
    )
    def preferred_language(self) -> str | None:
        return self._disclosed().preferred_language

    @strawberry.field
    def version(self) -> int | None:
        return self._disclosed().version

    @strawberry.field
    def created_at(self) -> datetime | None:
        return self._disclosed().created_at

    @strawberry.field
    def updated_at(self) -> datetime | None:
        return self._disclosed().updated_at

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON | None:
        return as_json(to_fhir_patient(self._disclosed()))

    @strawberry.field(description="The organization that holds the patient's record.")
    async def managing_organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self._disclosed().managing_organization_id)

    @strawberry.field(description="The patient's consents your organization is party to.")
    async def consents(
        self, info: Info
    ) -> list[Annotated[Consent, strawberry.lazy("api.schema.consent")]] | None:
        from api.schema.consent import Consent

        found = await info.context.loaders.consents_by_patient.load(self.patient_id)
        return [Consent.from_domain(consent) for consent in found]

    @strawberry.field(description="The patient's referrals your organization is party to.")
    async def referrals(
        self,
        info: Info,
        filter: Annotated[ReferralFilterInput, strawberry.lazy("api.schema.referral")]
        | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[Annotated[Referral, strawberry.lazy("api.schema.referral")]] | None:
        from api.schema.referral import ReferralFilterInput, referrals_of_patient

        where = (filter or ReferralFilterInput()).to_filter()
        return await referrals_of_patient(info, self.patient_id, where, first, after)

    @strawberry.field(description="Session attendance you recorded or may see under consent.")
    async def attendance(
        self, info: Info
    ) -> list[Annotated[Attendance, strawberry.lazy("api.schema.attendance")]] | None:
        from api.schema.attendance import Attendance

        found = await info.context.loaders.attendance_by_patient.load(self.patient_id)
        return [Attendance.from_domain(attendance) for attendance in found]

    @strawberry.field(description="Outcome measures you recorded or may see under consent.")
    async def outcome_measures(
        self, info: Info
    ) -> list[Annotated[OutcomeMeasure, strawberry.lazy("api.schema.outcome")]] | None:
        from api.schema.outcome import OutcomeMeasure

        found = await info.context.loaders.outcomes_by_patient.load(self.patient_id)
        return [OutcomeMeasure.from_domain(measure) for measure in found]


async def load_patient(info: Info, patient_id: UUID) -> Patient:
    """The patient, or NOT_FOUND / FORBIDDEN / CONSENT_REQUIRED / CONSENT_REVOKED."""
    return Patient.from_domain(await info.context.loaders.patients.load(patient_id))
