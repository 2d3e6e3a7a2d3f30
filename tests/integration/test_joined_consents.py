"""The consent decisions of a read whose statement joins the consents in (`ConsentScope`,
api/db/joined_consents.py) are the decisions made over the patients' consents read on their own:
same permits, same consents named in the same order, same purposes, and the same refusals with
the same reasons (CONSENT_REQUIRED / CONSENT_REVOKED), with no consent query of their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from network import Network, register_patient

from api.domain.consents import Consent, DataClass, Purpose
from api.services.policy import Disclosure, consent_scope, decide

DEMOGRAPHICS = frozenset({DataClass.DEMOGRAPHICS})
REFERRAL = frozenset({DataClass.REFERRAL})
PART2 = frozenset({DataClass.REFERRAL, DataClass.SUBSTANCE_USE})


def _consent(
    network: Network,
    patient_id: uuid.UUID,
    *,
    recipient: uuid.UUID | None = None,
    classes: frozenset[DataClass] = DEMOGRAPHICS | REFERRAL,
    purposes: frozenset[Purpose] = frozenset({Purpose.TREATMENT}),
    start: timedelta = timedelta(days=-1),
    end: timedelta | None = None,
    revoked: bool = False,
    age: timedelta = timedelta(0),
) -> Consent:
    now = datetime.now(UTC)
    return Consent(
        id=uuid.uuid4(),
        patient_id=patient_id,
        recorded_by_organization_id=network.clinic.id,
        recipient_organization_id=recipient or network.peer.id,
        purposes=purposes,
        data_classes=classes,
        period_start=now + start,
        period_end=None if end is None else now + end,
        revoked=revoked,
        revoked_at=now if revoked else None,
        revocation_reason="asked to stop" if revoked else None,
        source_reference=None,
        version=1,
        created_at=now - age,
        updated_at=now - age,
    )


async def test_the_joined_decision_is_the_rule_over_every_kind_of_consent(
    network: Network,
) -> None:
    people = [(await register_patient(network)).id for _ in range(9)]
    kinds = [
        [],  # no consent at all
        [dict()],  # in force: demographics and referral
        [dict(revoked=True)],
        [dict(start=timedelta(days=-10), end=timedelta(days=-1))],  # ended
        [dict(start=timedelta(days=1))],  # not begun (in force two days on)
        [dict(recipient=network.stranger.id)],  # names another organization
        # Two that cover, the older named first; their purposes together.
        [
            dict(purposes=frozenset({Purpose.CARE_COORDINATION})),
            dict(age=timedelta(hours=1)),
        ],
        [dict(classes=PART2)],  # Part 2: substance use named explicitly
        [dict(classes=DEMOGRAPHICS), dict(revoked=True, classes=REFERRAL)],
    ]
    async with network.uow() as uow:
        for person, consents in zip(people, kinds, strict=True):
            for attributes in consents:
                await uow.consents.add(_consent(network, person, **attributes))
        await uow.commit()

    principal = network.as_peer
    requests = [
        Disclosure(person, network.clinic.id, classes)
        for person in people
        for classes in (DEMOGRAPHICS, REFERRAL, PART2)
    ]
    today, later = datetime.now(UTC), datetime.now(UTC) + timedelta(days=2)
    decided = {}
    for now in (today, later):
        async with network.uow() as uow:
            read = await uow.patients.get_many_with_consents(people, consent_scope(principal))
            joined = {item[0].id: item[1] for item in read if item is not None}
            with_join = await decide(
                uow, principal, requests, now, [joined[r.patient_id] for r in requests]
            )
            by_rule = await decide(uow, principal, requests, now)
        assert with_join == by_rule
        decided[now] = {r: d for r, d in zip(requests, by_rule, strict=True)}

    def permitted(now: datetime, person: int, classes: frozenset[DataClass]) -> bool:
        return decided[now][Disclosure(people[person], network.clinic.id, classes)].permitted

    assert permitted(today, 1, DEMOGRAPHICS) and not permitted(today, 1, PART2)
    assert permitted(today, 7, PART2)
    assert not permitted(today, 2, REFERRAL) and not permitted(today, 4, REFERRAL)
    assert permitted(later, 4, REFERRAL)
    both = decided[today][Disclosure(people[6], network.clinic.id, REFERRAL)]
    assert len(both.consent_ids) == 2
    assert both.purposes == {Purpose.TREATMENT, Purpose.CARE_COORDINATION}
