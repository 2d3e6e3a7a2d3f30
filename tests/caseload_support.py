"""A peer supporter's caseload for tests: the patients in it and beyond it, and a bearer token
held to it.

Bearer tokens carry no caseload (only a console sign-in does); `holding_caseload` makes the
test's token one a supporter holds, so the GraphQL and FHIR doors are driven with the same
principal the console builds for a supporter.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from network import MRN_SYSTEM, Network, consent_to, register_patient
from starlette.applications import Starlette

from api.auth.authenticator import Authenticator
from api.auth.runtime import AuthRuntime
from api.domain.patients import Patient, PatientIdentifier
from api.domain.principal import Principal
from api.domain.referrals import Transition
from api.domain.supporters import PeerSupporter
from api.services import patients, referrals, supporters
from api.services.patients import RegisterPatient


@dataclass
class _CaseloadAuthenticator:
    """The app's authenticator, whose principal for `token` is held to `supporter_id`."""

    real: Authenticator
    token: str
    supporter_id: UUID

    async def authenticate(
        self, token: str, *, source_ip: str | None = None, trace_id: str | None = None
    ) -> Principal:
        principal = await self.real.authenticate(token, source_ip=source_ip, trace_id=trace_id)
        if token == self.token:
            return replace(principal, caseload_of=self.supporter_id)
        return principal


def holding_caseload(app: Starlette, token: str, supporter_id: UUID) -> None:
    runtime: AuthRuntime = app.state.auth
    app.state.auth = replace(
        runtime,
        authenticator=_CaseloadAuthenticator(runtime.authenticator, token, supporter_id),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class CaseloadPatients:
    in_caseload: Patient
    of_organization: Patient  # the supporter's organization holds it; no referral of theirs
    of_colleague: Patient  # consented, referred, assigned to another supporter
    colleague: PeerSupporter
    referral_of: dict[UUID, UUID]  # patient id -> their referral (none for of_organization)

    @property
    def hidden(self) -> tuple[Patient, Patient]:
        return (self.of_organization, self.of_colleague)


async def referred_to(network: Network, patient_id: UUID, supporter_id: UUID) -> UUID:
    """A referral of the patient from the clinic to the peer program, accepted and assigned."""
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        referrals.CreateReferral(
            patient_id=patient_id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
        ),
    )
    await referrals.transition_referral(
        network.uow(), network.as_peer, view.referral.id, Transition.ACCEPT
    )
    await referrals.assign_supporter(network.uow(), network.as_peer, view.referral.id, supporter_id)
    return view.referral.id


async def caseload_patients(network: Network, *consented: Any) -> CaseloadPatients:
    """The network's patient in `network.supporter`'s caseload, a colleague's (consented to the
    peer organization for `consented` data classes, or the default ones) and a walk-in the
    peer organization registered."""
    mine = await referred_to(network, network.patient.id, network.supporter.id)
    colleague = await supporters.upsert_supporter(
        network.uow(),
        network.as_peer,
        supporters.UpsertPeerSupporter(
            display_name="Robin Other",
            max_caseload=5,
            certifications=network.supporter.certifications,
        ),
    )
    theirs = await register_patient(network)
    await consent_to(network, theirs.id, network.peer, *consented)
    their_referral = await referred_to(network, theirs.id, colleague.id)
    walk_in = await patients.register_patient(
        network.uow(),
        network.as_peer,
        RegisterPatient(
            identifiers=(PatientIdentifier(MRN_SYSTEM, f"WALK-{secrets.token_hex(4)}"),),
            given_name="Walk",
            family_name="In",
        ),
    )
    return CaseloadPatients(
        network.patient,
        walk_in,
        theirs,
        colleague,
        {network.patient.id: mine, theirs.id: their_referral},
    )


def without(body: Any, *ids: UUID) -> str:
    """The answer with the asked ids blanked out, to compare with an unknown id's."""
    text = str(body)
    for ident in ids:
        text = text.replace(str(ident), "<id>")
    return text
