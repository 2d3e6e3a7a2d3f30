"""OutcomeMeasure: PHQ-9, GAD-7 and local instruments (FHIR QuestionnaireResponse +
Observation); a positive PHQ-9 item 9 is a safety signal."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.domain import outcomes as domain
from api.domain.outcomes import INSTRUMENTS, Instrument
from api.integrations.fhir.resources.measures import (
    to_fhir_observation,
    to_fhir_questionnaire_response,
)
from api.schema.coding import Coding
from api.schema.context import Info
from api.schema.fhir import FHIR_DESCRIPTION, as_json
from api.schema.ids import to_id
from api.schema.node import Node
from api.schema.organization import Organization, load_organization
from api.schema.patient import Patient, load_patient
from api.schema.referral import Referral, load_referral


@strawberry.type(description="An administered instrument with its item answers and total.")
class OutcomeMeasure(Node):
    id: strawberry.ID
    patient_id: strawberry.ID
    instrument: Instrument
    title: str
    code: Coding = strawberry.field(description="The panel code (LOINC 44249-1 for PHQ-9).")
    administered_at: datetime
    item_answers: list[int]
    total: int
    safety_signal: bool = strawberry.field(description="PHQ-9 item 9 above zero.")
    version: int
    created_at: datetime
    updated_at: datetime
    record: strawberry.Private[domain.OutcomeMeasure]

    @classmethod
    def from_domain(cls, measure: domain.OutcomeMeasure) -> OutcomeMeasure:
        spec = INSTRUMENTS[measure.instrument]
        return cls(
            id=to_id(measure.id),
            patient_id=to_id(measure.patient_id),
            instrument=measure.instrument,
            title=spec.title,
            code=Coding(system=spec.system, code=spec.panel_code, display=spec.title),
            administered_at=measure.administered_at,
            item_answers=list(measure.item_answers),
            total=measure.total,
            safety_signal=measure.safety_signal,
            version=measure.version,
            created_at=measure.created_at,
            updated_at=measure.updated_at,
            record=measure,
        )

    @strawberry.field(description=FHIR_DESCRIPTION)
    def fhir(self) -> JSON:
        return as_json(to_fhir_questionnaire_response(self.record))

    @strawberry.field(description="The total score as a FHIR Observation.")
    def fhir_observation(self) -> JSON:
        return as_json(to_fhir_observation(self.record))

    @strawberry.field(description="The participant (null with an error when not disclosed).")
    async def patient(self, info: Info) -> Patient | None:
        return await load_patient(info, self.record.patient_id)

    @strawberry.field(description="The organization that recorded the measure.")
    async def organization(self, info: Info) -> Organization | None:
        return await load_organization(info, self.record.organization_id)

    @strawberry.field
    async def referral(self, info: Info) -> Referral | None:
        referral_id = self.record.referral_id
        return None if referral_id is None else await load_referral(info, referral_id)
