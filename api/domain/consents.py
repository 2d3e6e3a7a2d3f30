"""Patient consent and the disclosure rule every read and write of patient data obeys.

The rule: the organization that recorded a piece of patient data may always see it; any other
organization needs a consent of that patient, active now, naming it, for the data class and one
of the accepted purposes. `substance_use` (42 CFR Part 2) is covered only when named explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from api.domain.events import DomainEvent
from api.domain.verbatim import Verbatim, nothing_kept


class DataClass(StrEnum):
    DEMOGRAPHICS = "demographics"
    REFERRAL = "referral"
    SESSIONS = "sessions"
    OUTCOMES = "outcomes"
    SUBSTANCE_USE = "substance_use"


class Purpose(StrEnum):
    TREATMENT = "treatment"
    CARE_COORDINATION = "care_coordination"


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


SHARING_PURPOSES = frozenset({Purpose.TREATMENT, Purpose.CARE_COORDINATION})

PART2_REDISCLOSURE_NOTICE = (
    "This record, whose confidentiality is protected by federal law (42 CFR part 2), has been "
    "disclosed to you. Federal law prohibits any further disclosure of it unless expressly "
    "permitted by the written consent of the person to whom it pertains or as otherwise "
    "permitted by 42 CFR part 2."
)


@dataclass(frozen=True)
class ConsentTerms:
    """What the rule reads of a consent (`decide_disclosure`): whose, naming whom, for what,
    when, and whether revoked. A read joins exactly these in with its rows (`ConsentScope`)."""

    id: UUID
    patient_id: UUID
    recipient_organization_id: UUID
    purposes: frozenset[Purpose]
    data_classes: frozenset[DataClass]
    period_start: datetime
    period_end: datetime | None
    revoked: bool

    def status_at(self, now: datetime) -> ConsentStatus:
        if self.revoked:
            return ConsentStatus.REVOKED
        if self.period_end is not None and now >= self.period_end:
            return ConsentStatus.EXPIRED
        return ConsentStatus.ACTIVE

    def in_force_at(self, now: datetime) -> bool:
        return self.status_at(now) is ConsentStatus.ACTIVE and self.period_start <= now

    def covers(
        self,
        recipient_organization_id: UUID,
        data_classes: Iterable[DataClass],
        purposes: frozenset[Purpose],
        now: datetime,
    ) -> bool:
        return (
            self.recipient_organization_id == recipient_organization_id
            and self.in_force_at(now)
            and set(data_classes) <= self.data_classes
            and bool(self.purposes & purposes)
        )


@dataclass(frozen=True)
class Consent(ConsentTerms):
    recorded_by_organization_id: UUID
    revoked_at: datetime | None
    revocation_reason: str | None
    source_reference: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent

    def event(self, event_type: str, at: datetime) -> DomainEvent:
        """What happened to this consent, announced to the organization that recorded it and
        the one it names (its status at `at`; ids and codes only)."""
        return DomainEvent(
            event_type,
            "Consent",
            self.id,
            (self.recorded_by_organization_id, self.recipient_organization_id),
            {"status": self.status_at(at).value, "version": self.version},
        )

    def revoke(self, reason: str | None, at: datetime) -> tuple[Consent, DomainEvent]:
        """The consent revoked at `at` (its next version) and the event that announces it."""
        revoked = replace(
            self,
            revoked=True,
            revoked_at=at,
            revocation_reason=reason,
            version=self.version + 1,
            updated_at=at,
        )
        return revoked, revoked.event("ConsentRevoked", at)


@dataclass(frozen=True)
class ConsentDecision:
    """The outcome of a disclosure check, kept for the audit trail."""

    permitted: bool
    consent_ids: tuple[UUID, ...]
    reason: str | None
    had_lapsed_consent: bool = False
    # The purposes of use the relied-on consents allow (of those asked for); empty when no
    # consent was needed (an organization's own records) or none was found.
    purposes: frozenset[Purpose] = frozenset()


def relying_on(consents: Iterable[Consent]) -> ConsentDecision:
    """A permit that rests on these consents (e.g. a party reading a form they cite)."""
    relied = list(consents)
    return ConsentDecision(
        True,
        tuple(c.id for c in relied),
        None,
        purposes=frozenset().union(*(c.purposes for c in relied)),
    )


@dataclass(frozen=True)
class ConsentScope:
    """Which consents a read joins in with its rows: every consent of the row's patient naming
    `recipient_organization_id`, in force or not, as `ConsentTerms` - what `decide_disclosure`
    reads, so the decision (a permit, or why not) needs no query of its own. The policy point
    builds it (`api.services.policy.consent_scope`); the repositories read it in SQL."""

    recipient_organization_id: UUID


def decide_disclosure(
    consents: Iterable[ConsentTerms],
    *,
    patient_id: UUID,
    recipient_organization_id: UUID,
    data_classes: Iterable[DataClass],
    purposes: frozenset[Purpose] = SHARING_PURPOSES,
    now: datetime,
) -> ConsentDecision:
    """Decide whether the recipient may receive these data classes of this patient now."""
    needed = frozenset(data_classes)
    mine = [
        c
        for c in consents
        if c.patient_id == patient_id and c.recipient_organization_id == recipient_organization_id
    ]
    covering = [c for c in mine if c.covers(recipient_organization_id, needed, purposes, now)]
    if covering:
        allowed = frozenset().union(*(c.purposes for c in covering)) & purposes
        return ConsentDecision(True, tuple(c.id for c in covering), None, purposes=allowed)
    lapsed = any(
        c.status_at(now) is not ConsentStatus.ACTIVE and needed <= c.data_classes for c in mine
    )
    missing = sorted(
        needed - frozenset().union(*(c.data_classes for c in mine if c.in_force_at(now)))
    )
    reason = (
        "the patient's consent for this organization is no longer in force"
        if lapsed
        else "no active consent of the patient names this organization for "
        + ", ".join(missing or sorted(needed))
    )
    return ConsentDecision(False, (), reason, had_lapsed_consent=lapsed)
