"""Outcome measures (PHQ-9, GAD-7 and local instruments) with items, totals and safety signals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.errors import Invalid, InvalidDetail

LOINC = "http://loinc.org"
LOCAL_INSTRUMENTS = "https://peerbridge.example.org/fhir/CodeSystem/instruments"


class Instrument(StrEnum):
    PHQ9 = "phq9"
    GAD7 = "gad7"
    SWEMWBS = "swemwbs"
    RAS = "ras"


@dataclass(frozen=True)
class InstrumentSpec:
    title: str
    system: str
    panel_code: str
    total_code: str
    item_codes: tuple[str, ...]
    item_min: int
    item_max: int
    safety_item: int | None = None  # 0-based index of an item whose positive answer is a signal


INSTRUMENTS: dict[Instrument, InstrumentSpec] = {
    Instrument.PHQ9: InstrumentSpec(
        "PHQ-9",
        LOINC,
        "44249-1",
        "44261-6",
        (
            "44250-9",
            "44255-8",
            "44259-0",
            "44254-1",
            "44251-7",
            "44258-2",
            "44252-5",
            "44253-3",
            "44260-8",
        ),
        0,
        3,
        safety_item=8,
    ),
    Instrument.GAD7: InstrumentSpec(
        "GAD-7",
        LOINC,
        "69737-5",
        "70274-6",
        ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
        0,
        3,
    ),
    Instrument.SWEMWBS: InstrumentSpec(
        "Short Warwick-Edinburgh Mental Wellbeing Scale",
        LOCAL_INSTRUMENTS,
        "swemwbs",
        "swemwbs-total",
        tuple(f"swemwbs-{n}" for n in range(1, 8)),
        1,
        5,
    ),
    Instrument.RAS: InstrumentSpec(
        "Recovery Assessment Scale (short form)",
        LOCAL_INSTRUMENTS,
        "ras",
        "ras-total",
        tuple(f"ras-{n}" for n in range(1, 25)),
        1,
        5,
    ),
}


@dataclass(frozen=True)
class OutcomeMeasure:
    id: UUID
    patient_id: UUID
    organization_id: UUID
    referral_id: UUID | None
    instrument: Instrument
    administered_at: datetime
    item_answers: tuple[int, ...]
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def total(self) -> int:
        return sum(self.item_answers)

    @property
    def safety_signal(self) -> bool:
        item = INSTRUMENTS[self.instrument].safety_item
        return item is not None and self.item_answers[item] > 0


def check_answers(instrument: Instrument, answers: tuple[int, ...]) -> None:
    spec = INSTRUMENTS[instrument]
    if len(answers) != len(spec.item_codes):
        raise Invalid(
            f"{spec.title} has {len(spec.item_codes)} items, {len(answers)} answers were given",
            field="itemAnswers",
        )
    bad = [
        InvalidDetail(f"itemAnswers[{i}]", f"must be between {spec.item_min} and {spec.item_max}")
        for i, answer in enumerate(answers)
        if not spec.item_min <= answer <= spec.item_max
    ]
    if bad:
        raise Invalid(bad)
