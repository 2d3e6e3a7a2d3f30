"""OutcomeMeasure ↔ FHIR QuestionnaireResponse (item answers) + Observation (LOINC total).

Both share the measure's id; the Observation is `derivedFrom` the QuestionnaireResponse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from api.domain.errors import Invalid
from api.domain.outcomes import INSTRUMENTS, Instrument, OutcomeMeasure
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    concept,
    finish,
    instant,
    meta,
    meta_version,
    parse_instant,
    ref,
    ref_id,
)
from api.services.outcomes import RecordOutcomeMeasure


def questionnaire_url(instrument: Instrument) -> str:
    return f"{codes.QUESTIONNAIRE}/{instrument.value}"


_INSTRUMENT_OF_URL = {questionnaire_url(i): i for i in Instrument}


def to_fhir_questionnaire_response(measure: OutcomeMeasure) -> Json:
    spec = INSTRUMENTS[measure.instrument]
    return finish(
        QuestionnaireResponse,
        {
            "resourceType": "QuestionnaireResponse",
            "id": str(measure.id),
            "meta": meta(measure.version, measure.updated_at),
            "basedOn": [ref("ServiceRequest", measure.referral_id)] if measure.referral_id else [],
            "questionnaire": questionnaire_url(measure.instrument),
            "status": "completed",
            "subject": ref("Patient", measure.patient_id),
            "authored": instant(measure.administered_at),
            "author": ref("Organization", measure.organization_id),
            "item": [
                {
                    "linkId": code,
                    "definition": f"{spec.system}#{code}" if spec.system == codes.LOINC else None,
                    "answer": [{"valueInteger": answer}],
                }
                for code, answer in zip(spec.item_codes, measure.item_answers, strict=True)
            ],
        },
    )


def to_fhir_observation(measure: OutcomeMeasure) -> Json:
    spec = INSTRUMENTS[measure.instrument]
    return finish(
        Observation,
        {
            "resourceType": "Observation",
            "id": str(measure.id),
            "meta": meta(measure.version, measure.updated_at),
            "basedOn": [ref("ServiceRequest", measure.referral_id)] if measure.referral_id else [],
            "status": "final",
            "category": [concept(codes.OBSERVATION_CATEGORY, "survey", "Survey")],
            "code": concept(spec.system, spec.total_code, f"{spec.title} total score"),
            "subject": ref("Patient", measure.patient_id),
            "effectiveDateTime": instant(measure.administered_at),
            "performer": [ref("Organization", measure.organization_id)],
            "valueInteger": measure.total,
            "interpretation": [
                concept(_INTERPRETATION, "A", "Abnormal", text="safety signal: item 9 positive")
            ]
            if measure.safety_signal
            else [],
            "derivedFrom": [ref("QuestionnaireResponse", measure.id)],
        },
    )


_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def record_outcome_command(resource: Mapping[str, Any]) -> RecordOutcomeMeasure:
    """What a peer organization POSTs: the instrument (questionnaire) and every item's answer."""
    instrument = _INSTRUMENT_OF_URL.get(resource.get("questionnaire", ""))
    if instrument is None:
        raise Invalid(
            "must be one of " + ", ".join(sorted(_INSTRUMENT_OF_URL)),
            field="QuestionnaireResponse.questionnaire",
        )
    spec = INSTRUMENTS[instrument]
    answers: dict[str, int] = {}
    for index, item in enumerate(resource.get("item", ())):
        values = [a.get("valueInteger") for a in item.get("answer", ())]
        if item.get("linkId") not in spec.item_codes or len(values) != 1 or values[0] is None:
            raise Invalid(
                "each item is one of the instrument's linkIds with one integer answer",
                field=f"QuestionnaireResponse.item[{index}]",
            )
        answers[item["linkId"]] = values[0]
    missing = [code for code in spec.item_codes if code not in answers]
    if missing:
        raise Invalid(f"{len(missing)} items unanswered", field="QuestionnaireResponse.item")
    based_on = resource.get("basedOn") or []
    authored = resource.get("authored")
    return RecordOutcomeMeasure(
        patient_id=ref_id(resource.get("subject"), "Patient", "QuestionnaireResponse.subject"),
        instrument=instrument,
        item_answers=tuple(answers[code] for code in spec.item_codes),
        administered_at=parse_instant(authored, "QuestionnaireResponse.authored")
        if authored
        else None,
        referral_id=ref_id(based_on[0], "ServiceRequest", "QuestionnaireResponse.basedOn[0]")
        if based_on
        else None,
    )


def from_fhir_outcome_measure(resource: Mapping[str, Any]) -> OutcomeMeasure:
    version, updated_at = meta_version(resource)
    command = record_outcome_command(resource)
    assert command.administered_at is not None
    return OutcomeMeasure(
        id=UUID(resource["id"]),
        patient_id=command.patient_id,
        organization_id=ref_id(
            resource.get("author"), "Organization", "QuestionnaireResponse.author"
        ),
        referral_id=command.referral_id,
        instrument=command.instrument,
        administered_at=command.administered_at,
        item_answers=command.item_answers,
        version=version,
        created_at=updated_at,
        updated_at=updated_at,
    )
