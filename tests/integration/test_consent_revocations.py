"""Ending all sharing of a patient with an organization in one call, and grants that repeat an
active consent, through the services on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from network import Network, consent_to

from api.domain.consents import Consent, ConsentStatus, DataClass, Purpose
from api.domain.errors import ConsentRevoked, NotFound
from api.services import consent_revocations, consents, patients
from api.services.consent_revocations import RevokeConsents


async def scalar(network: Network, sql: str, *args: object) -> object:
    async with network.pool.acquire() as conn:
        return await conn.fetchval(sql, *args)


async def grant(network: Network, **changes: object) -> Consent:
    fields: dict[str, object] = {
        "patient_id": network.patient.id,
        "recipient_organization_id": network.peer.id,
        "purposes": frozenset({Purpose.TREATMENT}),
        "data_classes": frozenset({DataClass.OUTCOMES}),
    }
    fields.update(changes)
    return await consents.grant_consent(
        network.uow(),
        network.as_clinic,
        consents.GrantConsent(**fields),  # type: ignore[arg-type]
    )


async def test_revoking_all_sharing_revokes_every_consent_in_force_or_yet_to_start(
    network: Network,
) -> None:
    now = datetime.now(UTC)
    upcoming = await grant(network, period_start=now + timedelta(days=7))
    expired = await grant(
        network, period_start=now - timedelta(days=30), period_end=now - timedelta(days=1)
    )
    already = await grant(network, data_classes=frozenset({DataClass.SESSIONS}))
    await consents.revoke_consent(network.uow(), network.as_clinic, already.id)
    elsewhere = await consent_to(network, network.patient.id, network.stranger)

    revoked = await consent_revocations.revoke_consents(
        network.uow(),
        network.as_clinic,
        RevokeConsents(network.patient.id, network.peer.id, reason="  patient asked  "),
    )

    assert [c.id for c in revoked] == [network.consent.id, upcoming.id]
    # The reason as given (kept, not trimmed: the fidelity rule holds for GraphQL input too).
    assert all(c.revoked and c.revocation_reason == "  patient asked  " for c in revoked)
    assert all(c.status_at(datetime.now(UTC)) is ConsentStatus.REVOKED for c in revoked)
    (left_alone,) = await consents.get_consents(network.uow(), network.as_clinic, [elsewhere.id])
    assert isinstance(left_alone, Consent) and not left_alone.revoked
    (still_expired,) = await consents.get_consents(network.uow(), network.as_clinic, [expired.id])
    assert isinstance(still_expired, Consent) and not still_expired.revoked
    # Each revocation is audited and announced.
    for consent in revoked:
        assert (
            await scalar(
                network,
                "SELECT count(*) FROM audit_events WHERE resource_id = $1 AND action = 'U' "
                "AND operation = 'revokeConsents' AND outcome = 'success'",
                consent.id,
            )
            == 1
        )
        assert (
            await scalar(
                network,
                "SELECT count(*) FROM outbox WHERE aggregate_id = $1 "
                "AND event_type = 'ConsentRevoked'",
                consent.id,
            )
            == 1
        )
    # The patient's data stops reaching the peer organization on the next request.
    (refused,) = await patients.get_patients(network.uow(), network.as_peer, [network.patient.id])
    assert isinstance(refused, ConsentRevoked)
    # Nothing is left to revoke: the call is idempotent.
    again = await consent_revocations.revoke_consents(
        network.uow(), network.as_clinic, RevokeConsents(network.patient.id, network.peer.id)
    )
    assert again == []


async def test_the_recipient_may_end_the_sharing_and_a_stranger_may_not(
    network: Network,
) -> None:
    command = RevokeConsents(network.patient.id, network.peer.id)
    # No relationship with the patient: to the stranger the patient does not exist.
    with pytest.raises(NotFound):
        await consent_revocations.revoke_consents(network.uow(), network.as_stranger, command)
    assert (
        await scalar(
            network,
            "SELECT count(*) FROM audit_events WHERE operation = 'revokeConsents' "
            "AND outcome = 'denied' AND organization_id = $1",
            network.stranger.id,
        )
        == 1
    )
    (revoked,) = await consent_revocations.revoke_consents(network.uow(), network.as_peer, command)
    assert revoked.id == network.consent.id


async def test_revoking_the_sharing_of_an_unknown_patient_or_organization_is_not_found(
    network: Network,
) -> None:
    unknown = network.stranger.id  # an organization id is no patient id
    with pytest.raises(NotFound, match="Patient"):
        await consent_revocations.revoke_consents(
            network.uow(), network.as_clinic, RevokeConsents(unknown, network.peer.id)
        )
    with pytest.raises(NotFound, match="Organization"):
        await consent_revocations.revoke_consents(
            network.uow(),
            network.as_clinic,
            RevokeConsents(network.patient.id, network.patient.id),
        )


async def test_a_grant_repeating_an_active_consent_returns_it_and_records_nothing_new(
    network: Network,
) -> None:
    first = await grant(network)
    events = await scalar(network, "SELECT count(*) FROM outbox")
    again = await grant(network)
    assert again.id == first.id
    assert await scalar(network, "SELECT count(*) FROM outbox") == events
    # Anything different is a consent of its own: here, another source document.
    cited = await grant(network, source_reference="https://clinic.example.org/forms/2.pdf")
    assert cited.id != first.id
    # Once revoked, the same grant records a new consent.
    await consents.revoke_consent(network.uow(), network.as_clinic, first.id)
    renewed = await grant(network)
    assert renewed.id not in (first.id, cited.id) and not renewed.revoked
