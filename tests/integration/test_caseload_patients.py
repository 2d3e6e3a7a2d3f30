"""A peer supporter reads only the patients of the referrals assigned to them, at every door.

Their organization's other patients, and a colleague's caseload, read exactly as unknown ids
(no oracle), and each attempt is audited as a denied read. A bearer token is held to the
caseload by `caseload_support.holding_caseload`.
"""

from __future__ import annotations

import uuid
from uuid import UUID

import asyncpg
import httpx
from caseload_support import caseload_patients, holding_caseload, without
from fhir_support import Fhir, entries
from graphql_support import GraphQL
from network import Network
from starlette.applications import Starlette

from api.domain.patients import Patient
from api.services import patients


async def _denied_reads(pool: asyncpg.Pool, patient_id: UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT detail_code FROM audit_events WHERE patient_id = $1 AND outcome = 'denied' "
        "AND operation = 'readPatient'",
        patient_id,
    )
    return [row["detail_code"] for row in rows]


_PATIENT = "query ($id: ID!) { patient(id: $id) { id familyName } }"


async def test_graphql_patient_reads_of_a_supporter_stop_at_their_caseload(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    people = await caseload_patients(network)
    graphql = await GraphQL.as_organization(client, pool, network.peer)
    assert graphql.token is not None
    everyone = [people.in_caseload, people.of_organization, people.of_colleague]
    for patient in everyone:  # the organization's own client reads them all
        assert (await graphql.data(_PATIENT, id=str(patient.id)))["patient"]["id"]

    holding_caseload(app, graphql.token, network.supporter.id)
    shown = await graphql.data(_PATIENT, id=str(people.in_caseload.id))
    assert shown["patient"] == {
        "id": str(people.in_caseload.id),
        "familyName": people.in_caseload.family_name,
    }
    unknown = uuid.uuid4()
    never_stored = without(await graphql.run(_PATIENT, id=str(unknown)), unknown)
    assert "NOT_FOUND" in never_stored
    for hidden in (people.of_organization, people.of_colleague):
        assert without(await graphql.run(_PATIENT, id=str(hidden.id)), hidden.id) == never_stored
        assert await _denied_reads(pool, hidden.id) == ["NOT_FOUND"]


async def test_fhir_patient_reads_and_searches_of_a_supporter_stop_at_their_caseload(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    people = await caseload_patients(network)
    fhir = await Fhir.as_organization(client, pool, network.peer)
    assert fhir.token is not None
    holding_caseload(app, fhir.token, network.supporter.id)

    read = await fhir.ok("GET", f"Patient/{people.in_caseload.id}")
    assert read["id"] == str(people.in_caseload.id)
    unknown = uuid.uuid4()
    absent = await fhir.get(f"Patient/{unknown}")
    assert absent.status_code == 404
    never_stored = without(absent.json(), unknown)
    for hidden in (people.of_organization, people.of_colleague):
        refused = await fhir.get(f"Patient/{hidden.id}")
        assert refused.status_code == 404
        assert without(refused.json(), hidden.id) == never_stored

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
    people = await caseload_patients(network)
    results = await patients.get_patients(
        network.uow(),
        network.as_peer,
        [people.in_caseload.id, people.of_organization.id, people.of_colleague.id],
    )
    assert all(isinstance(result, Patient) for result in results), results
