"""OutcomeMeasure ↔ FHIR QuestionnaireResponse (item answers) + Observation (LOINC total).

Both share the measure's id; the Observation is `derivedFrom` the QuestionnaireResponse.
A response arrives against PeerBridge's own Questionnaire or, for PHQ-9 and GAD-7, LOINC's
(`http://loinc.org/q/44249-1`, linkIds the LOINC item codes, answers LOINC answer codes or
scores); either way it is scored the same and kept as sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from api.domain.errors import Invalid
from api.domain.outcomes import (
    DIFFICULTY_ANSWERS,
    INSTRUMENTS,
    LOINC,
    Instrument,
    InstrumentSpec,
    OutcomeMeasure,
)
from api.domain.principal import Principal
from api.domain.verbatim import kept_for, with_kept
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import (
    Json,
    concept,
    finish,
    instant,
    meta,
    meta_version,
    parse_date_time,
    ref,
    ref_id,
)
from api.integrations.fhir.resources.kept import Keeping, merge
from api.services.outcomes import RecordOutcomeMeasure

# The record's truth: its status, and the references PeerBridge checks (the patient, the
# referral, the organization recording it). The questionnaire, items and answers are read into
# the measure and kept as sent, as is everything else.
KEEPING = Keeping(
    "QuestionnaireResponse", owned=frozenset({"status", "subject", "author", "basedOn"})
)


# LOINC publishes PHQ-9 and GAD-7 as Questionnaires at `http://loinc.org/q/<panel code>`.
LOINC_QUESTIONNAIRES = "http://loinc.org/q"
LOINC_INSTRUMENTS = (Instrument.PHQ9, Instrument.GAD7)


def questionnaire_url(instrument: Instrument) -> str:
    return f"{codes.QUESTIONNAIRE}/{instrument.value}"


_INSTRUMENT_OF_URL = {
    **{questionnaire_url(i): i for i in Instrument},
    **{f"{LOINC_QUESTIONNAIRES}/{INSTRUMENTS[i].panel_code}": i for i in LOINC_INSTRUMENTS},
}


def to_fhir_questionnaire_response(measure: OutcomeMeasure) -> Json:
    spec = INSTRUMENTS[measure.instrument]
    kept = kept_for(measure.verbatim, "QuestionnaireResponse")
    return finish(
        QuestionnaireResponse,
        merge(
            {
                "resourceType": "QuestionnaireResponse",
                "id": str(measure.id),
                "meta": meta(measure.version, measure.updated_at),
                "basedOn": [ref("ServiceRequest", measure.referral_id)]
                if measure.referral_id
                else [],
                "questionnaire": questionnaire_url(measure.instrument),
                "status": "completed",
                "subject": ref("Patient", measure.patient_id),
                "authored": instant(measure.administered_at),
                "author": ref("Organization", measure.organization_id),
                "item": [
                    {
                        "linkId": code,
                        "definition": f"{spec.system}#{code}"
                        if spec.system == codes.LOINC
                        else None,
                        "answer": [{"valueInteger": answer}],
                    }
                    for code, answer in zip(spec.item_codes, measure.item_answers, strict=True)
                ],
            },
            kept,
        ),
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


def _instrument(resource: Mapping[str, Any]) -> Instrument:
    canonical = str(resource.get("questionnaire", "")).partition("|")[0]  # `|version` allowed
    instrument = _INSTRUMENT_OF_URL.get(canonical)
    if instrument is None:
        raise Invalid(
            "must be one of " + ", ".join(sorted(_INSTRUMENT_OF_URL)),
            field="QuestionnaireResponse.questionnaire",
        )
    return instrument


def _score(answer: Mapping[str, Any], spec: InstrumentSpec, where: str) -> int:
    """An item's score: the integer sent, or the score of the LOINC answer code sent."""
    if "valueInteger" in answer:
        score = answer["valueInteger"]
    elif "valueCoding" in answer and spec.answer_codes:
        found = answer["valueCoding"]
        score = (
            spec.answer_codes.get(found.get("code", "")) if found.get("system") == LOINC else None
        )
        if score is None:
            raise Invalid("not a LOINC answer code of this item", field=f"{where}.valueCoding")
    else:
        raise Invalid(
            "an integer score" + (" or a LOINC answer code" if spec.answer_codes else ""),
            field=where,
        )
    if not spec.item_min <= score <= spec.item_max:
        raise Invalid(f"must be between {spec.item_min} and {spec.item_max}", field=where)
    return int(score)


def _total(answer: Mapping[str, Any]) -> Any:
    """The total score as sent: an integer, a decimal or a quantity's value."""
    for key in ("valueInteger", "valueDecimal"):
        if key in answer:
            return answer[key]
    return (answer.get("valueQuantity") or {}).get("value")


def _answers(resource: Mapping[str, Any], spec: InstrumentSpec) -> tuple[int, ...]:
    """Every item's score in the instrument's order; a total sent must be the sum."""
    scores: dict[str, int] = {}
    totals: list[tuple[str, Any]] = []
    for index, item in enumerate(resource.get("item", ())):
        where = f"QuestionnaireResponse.item[{index}]"
        code = str(item.get("linkId", "")).removeprefix("/")  # LHC-Forms writes "/44250-9"
        answers = item.get("answer", [])
        if "item" in item or any("item" in a for a in answers):
            raise Invalid("the instrument's items are not nested", field=f"{where}.item")
        if code not in (*spec.item_codes, spec.total_code, *spec.unscored_items):
            raise Invalid(f"not an item of {spec.title}", field=f"{where}.linkId")
        if code in scores or len(answers) != 1:
            raise Invalid("each item is answered once, with one answer", field=where)
        if code == spec.total_code:
            totals.append((f"{where}.answer[0]", _total(answers[0])))
        elif code in spec.unscored_items:
            found = answers[0].get("valueCoding") or {}
            if found.get("system") != LOINC or found.get("code") not in DIFFICULTY_ANSWERS:
                raise Invalid("one of LOINC answer list LL359-1", field=f"{where}.answer[0]")
        else:
            scores[code] = _score(answers[0], spec, f"{where}.answer[0]")
    missing = [code for code in spec.item_codes if code not in scores]
    if missing:
        raise Invalid(f"{len(missing)} items unanswered", field="QuestionnaireResponse.item")
    for where, total in totals:
        if total != sum(scores.values()):
            raise Invalid("is not the sum of the item scores", field=where)
    return tuple(scores[code] for code in spec.item_codes)


def record_outcome_command(
    resource: Mapping[str, Any], principal: Principal | None = None
) -> RecordOutcomeMeasure:
    """What a peer organization POSTs: a completed response to the instrument; every element
    but the record's own is kept as sent."""
    if resource.get("status") != "completed":
        raise Invalid("PeerBridge scores completed responses", field="QuestionnaireResponse.status")
    if "author" in resource:
        author = ref_id(resource["author"], "Organization", "QuestionnaireResponse.author")
        if principal is not None and author != principal.organization_id:
            raise Invalid(
                "the organization recording the response is the caller's own",
                field="QuestionnaireResponse.author",
            )
    instrument = _instrument(resource)
    based_on = resource.get("basedOn") or []
    authored = resource.get("authored")
    return RecordOutcomeMeasure(
        patient_id=ref_id(resource.get("subject"), "Patient", "QuestionnaireResponse.subject"),
        instrument=instrument,
        item_answers=_answers(resource, INSTRUMENTS[instrument]),
        administered_at=parse_date_time(authored, "QuestionnaireResponse.authored")
        if authored
        else None,
        referral_id=ref_id(based_on[0], "ServiceRequest", "QuestionnaireResponse.basedOn[0]")
        if based_on
        else None,
        verbatim=with_kept({}, "QuestionnaireResponse", KEEPING.split(resource)),
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
        verbatim=command.verbatim,
    )
