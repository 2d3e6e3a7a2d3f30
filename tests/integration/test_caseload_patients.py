"""A peer supporter reads only the patients of the referrals assigned to them, at every door.

Their organization's other patients, and a colleague's caseload, read exactly as unknown ids
(no oracle), and each attempt is audited as a denied read.

Bearer tokens carry no caseload (only a console sign-in does); `_holding_caseload` makes the
test's token one a supporter holds, so the GraphQL and FHIR doors are driven with the same
principal the console builds for a supporter.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from fhir_support import Fhir, entries
from graphql_support import GraphQL
from network import MRN_SYSTEM, Network, consent_to, register_patient
from starlette.applications import Starlette

from api.auth.authenticator import Authenticator
from api.auth.runtime import AuthRuntime
from api.domain.patients import Patient, PatientIdentifier
from api.domain.principal import Principal
from api.domain.referrals import Transition
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


def _holding_caseload(app: Starlette, token: str, supporter_id: UUID) -> None:
    runtime: AuthRuntime = app.state.auth
    app.state.auth = replace(
        runtime,
        authenticator=_CaseloadAuthenticator(runtime.authenticator, token, supporter_id),  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class _Patients:
    in_caseload: Patient
    of_organization: Patient  # the supporter's organization holds it; no referral of theirs
    of_colleague: Patient  # consented, referred, assigned to another supporter


async def _referred_to(network: Network, patient_id: UUID, supporter_id: UUID) -> None:
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


async def _patients(network: Network) -> _Patients:
    await _referred_to(network, network.patient.id, network.supporter.id)
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
    await consent_to(network, theirs.id, network.peer)
    await _referred_to(network, theirs.id, colleague.id)
    walk_in = await patients.register_patient(
        network.uow(),
        network.as_peer,
        RegisterPatient(
            identifiers=(PatientIdentifier(MRN_SYSTEM, f"WALK-{secrets.token_hex(4)}"),),
            given_name="Walk",
            family_name="In",
        ),
    )
    return _Patients(network.patient, walk_in, theirs)


async def _denied_reads(pool: asyncpg.Pool, patient_id: UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT detail_code FROM audit_events WHERE patient_id = $1 AND outcome = 'denied' "
        "AND operation = 'readPatient'",
        patient_id,
    )
    return [row["detail_code"] for row in rows]


_PATIENT = "query ($id: ID!) { patient(id: $id) { id familyName } }"


def _without(body: dict[str, Any], patient_id: UUID) -> str:
    """The answer with the asked id blanked out, to compare with an unknown id's."""
    return str(body).replace(str(patient_id), "<id>")


async def test_graphql_patient_reads_of_a_supporter_stop_at_their_caseload(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    people = await _patients(network)
    graphql = await GraphQL.as_organization(client, pool, network.peer)
    assert graphql.token is not None
    everyone = [people.in_caseload, people.of_organization, people.of_colleague]
    for patient in everyone:  # the organization's own client reads them all
        assert (await graphql.data(_PATIENT, id=str(patient.id)))["patient"]["id"]

    _holding_caseload(app, graphql.token, network.supporter.id)
    shown = await graphql.data(_PATIENT, id=str(people.in_caseload.id))
    assert shown["patient"] == {
        "id": str(people.in_caseload.id),
        "familyName": people.in_caseload.family_name,
    }
    unknown = uuid.uuid4()
    never_stored = _without(await graphql.run(_PATIENT, id=str(unknown)), unknown)
    assert "NOT_FOUND" in never_stored
    for hidden in (people.of_organization, people.of_colleague):
        assert _without(await graphql.run(_PATIENT, id=str(hidden.id)), hidden.id) == never_stored
        assert await _denied_reads(pool, hidden.id) == ["NOT_FOUND"]


async def test_fhir_patient_reads_and_searches_of_a_supporter_stop_at_their_caseload(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    people = await _patients(network)
    fhir = await Fhir.as_organization(client, pool, network.peer)
    assert fhir.token is not None
    _holding_caseload(app, fhir.token, network.supporter.id)

    read = await fhir.ok("GET", f"Patient/{people.in_caseload.id}")
    assert read["id"] == str(people.in_caseload.id)
    unknown = uuid.uuid4()
    absent = await fhir.get(f"Patient/{unknown}")
    assert absent.status_code == 404
    never_stored = _without(absent.json(), unknown)
    for hidden in (people.of_organization, people.of_colleague):
        refused = await fhir.get(f"Patient/{hidden.id}")
        assert refused.status_code == 404
        assert _without(refused.json(), hidden.id) == never_stored

        (identifier,) = hidden.identifiers
        searched = await fhir.ok(
            "GET", f"Patient?identifier={identifier.system}|{identifier.value}"
        )
        assert entries(searched) == []
        by_id = await fhir.ok("GET", f"Patient?_id={hidden.id},{people.in_caseload.id}")
        assert [e["id"] for e in entries(by_id, "match")] == [
            str(people.in_caseload.id)
        ]

    (identifier,) = people.in_caseload.identifiers
    searched = await fhir.ok("GET", f"Patient?identifier={identifier.system}|{identifier.value}")
    assert [e["id"] for e in entries(searched)] == [str(people.in_caseload.id)]


async def test_a_principal_not_held_to_a_caseload_reads_the_organizations_patients(
    network: Network,
) -> None:
    people = await _patients(network)
    results = await patients.get_patients(
        network.uow(),
        network.as_peer,
        [people.in_caseload.id, people.of_organization.id, people.of_colleague.id],
    )
    assert all(isinstance(result, Patient) for result in results), results
