"""Outcome measures (PHQ-9, GAD-7 and local instruments) with items, totals and safety signals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.errors import Invalid, InvalidDetail
from api.domain.events import DomainEvent
from api.domain.referrals import Referral
from api.domain.verbatim import Verbatim, nothing_kept

LOINC = "http://loinc.org"
LOCAL_INSTRUMENTS = "https://peerbridge.example.org/fhir/CodeSystem/instruments"


class Instrument(StrEnum):
    PHQ9 = "phq9"
    GAD7 = "gad7"
    SWEMWBS = "swemwbs"
    RAS = "ras"


# LOINC answer list LL358-3, the answers to every PHQ-9 and GAD-7 item: answer code → score.
FREQUENCY_ANSWERS: dict[str, int] = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
# LOINC 69722-7 "How difficult have these problems made it for you ...", asked after the items
# and not scored; its answers are LOINC answer list LL359-1.
DIFFICULTY_ITEM = "69722-7"
DIFFICULTY_ANSWERS = frozenset({"LA6572-7", "LA6573-5", "LA6575-0", "LA6574-3"})


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
    answer_codes: Mapping[str, int] = field(default_factory=dict)  # LOINC answers → score
    unscored_items: frozenset[str] = frozenset()  # items asked with it that add nothing


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
        answer_codes=FREQUENCY_ANSWERS,
        unscored_items=frozenset({DIFFICULTY_ITEM}),
    ),
    Instrument.GAD7: InstrumentSpec(
        "GAD-7",
        LOINC,
        "69737-5",
        "70274-6",
        ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
        0,
        3,
        answer_codes=FREQUENCY_ANSWERS,
        unscored_items=frozenset({DIFFICULTY_ITEM}),
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
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent

    @property
    def total(self) -> int:
        return sum(self.item_answers)

    @property
    def safety_signal(self) -> bool:
        item = INSTRUMENTS[self.instrument].safety_item
        return item is not None and self.item_answers[item] > 0

    def recorded(self, concerned: Sequence[Referral] = ()) -> list[DomainEvent]:
        """What recording this measure announces: `OutcomeMeasureRecorded` to the recorder and,
        with a safety signal, `SafetySignalRaised` on each referral it `concerned` (to both its
        organizations, so the referring clinic hears it too), or on the measure to the recorder
        alone when it concerns none. A signal says only where it was raised: no instrument,
        answer or score."""
        events = [
            DomainEvent(
                "OutcomeMeasureRecorded",
                "OutcomeMeasure",
                self.id,
                (self.organization_id,),
                {"instrument": self.instrument.value},
            )
        ]
        if not self.safety_signal:
            return events
        if not concerned:
            signal = DomainEvent(
                "SafetySignalRaised", "OutcomeMeasure", self.id, (self.organization_id,)
            )
            return [*events, signal]
        return [*events, *(referral.event("SafetySignalRaised") for referral in concerned)]


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
