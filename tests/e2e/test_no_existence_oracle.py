"""No existence oracle: to an organization with no relationship to a patient, a record of that
patient it may not see answers exactly like an id nobody holds, on every path of both doors.

For each path the stranger (a peer organization the patient never met) asks once with the id of
a real record and once with a random id; the two answers must be identical once each id is
replaced by a placeholder: same status, same codes, same messages, same shape. Denied attempts
on real records are still audited.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_flows import consent_form, procedure
from fhir_support import Fhir
from graphql_support import GraphQL
from network import Network

from api.domain.outcomes import Instrument
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.referrals import Transition
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.services import audit_trail, outcomes, programs, referrals, sessions
from api.services.referrals import CreateReferral


@dataclass(frozen=True)
class Records:
    """One real record of each kind, about the network's patient, none of them the stranger's."""

    patient: str
    referral: str
    consent: str
    procedure: str
    form: str
    attendance: str
    outcome: str
    audit_event: str
    stranger_session: str  # the stranger's own session, to record attendance against


async def _records(network: Network, peer: Fhir, clinic: Fhir) -> Records:
    patient = network.patient.id
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=patient, performer_organization_id=network.peer.id),
    )
    for move in (Transition.ACCEPT, Transition.START):
        view = await referrals.transition_referral(
            network.uow(), network.as_peer, view.referral.id, move
        )
    referral = str(view.referral.id)
    task = {"id": referral, "for": {"reference": f"Patient/{patient}"}}
    delivered = await peer.ok(
        "POST", "Procedure", procedure(task, f"Organization/{network.peer.id}")
    )
    form = await clinic.ok("POST", "DocumentReference", consent_form(f"Patient/{patient}"))
    start = datetime.now(UTC) - timedelta(hours=2)
    session = await sessions.record_session(
        network.uow(),
        network.as_peer,
        sessions.RecordSession(
            program_id=network.program.id,
            format=SessionFormat.GROUP,
            delivery_mode=DeliveryMode.IN_PERSON,
            starts_at=start,
            ends_at=start + timedelta(minutes=60),
        ),
    )
    attendance = await sessions.record_attendance(
        network.uow(),
        network.as_peer,
        sessions.RecordAttendance(
            session_id=session.id,
            patient_id=patient,
            status=AttendanceStatus.ATTENDED,
            referral_id=view.referral.id,
        ),
    )
    measure = await outcomes.record_outcome_measure(
        network.uow(),
        network.as_peer,
        outcomes.RecordOutcomeMeasure(
            patient_id=patient, instrument=Instrument.GAD7, item_answers=(0, 1, 0, 1, 0, 1, 0)
        ),
    )
    events = await audit_trail.list_audit_events(network.uow(), network.as_clinic, patient)
    program = await programs.upsert_program(
        network.uow(),
        network.as_stranger,
        programs.UpsertPeerProgram(name="Stranger circle", kind=ProgramKind.SUPPORT_GROUP),
    )
    own_session = await sessions.record_session(
        network.uow(),
        network.as_stranger,
        sessions.RecordSession(
            program_id=program.id,
            format=SessionFormat.GROUP,
            delivery_mode=DeliveryMode.PHONE,
            starts_at=start,
            ends_at=start + timedelta(minutes=30),
        ),
    )
    return Records(
        patient=str(patient),
        referral=referral,
        consent=str(network.consent.id),
        procedure=delivered["id"],
        form=form["id"],
        attendance=str(attendance.id),
        outcome=str(measure.id),
        audit_event=str(events[0].id),
        stranger_session=str(own_session.id),
    )


def _normalized(body: Any, ident: str) -> Any:
    """The body with the asked-for id as a placeholder, and what differs by nature between two
    requests (a searchset's own random id) left out."""
    text = json.dumps(body).replace(ident, "<id>")
    found = json.loads(text)
    if isinstance(found, dict) and found.get("resourceType") == "Bundle":
        found.pop("id", None)
    return found


Answer = tuple[int, Any]
Ask = Callable[[str], Awaitable[Answer]]


@dataclass(frozen=True)
class Path:
    real_id: str
    ask: Ask
    audited: bool = True  # False: a search that only ever looks at the caller's own records


async def _differences(
    paths: dict[str, Path],
    denials: Callable[[], Awaitable[int]],
    absent: Callable[[Answer], bool],
) -> list[str]:
    """For each path: whether the answer for the real record is not the kind of answer an
    absent record gets, whether it differs from the answer for a random id, and whether the
    refused read or change of the real record left no denied audit row."""
    problems = []
    for name, path in paths.items():
        random_id = str(uuid.uuid4())
        before = await denials()
        real = await path.ask(path.real_id)
        if path.audited and await denials() == before:
            problems.append(f"{name}: the refusal was not audited")
        if not absent(real):
            problems.append(f"{name}: not an answer for an absent record: {real}")
        unknown = await path.ask(random_id)
        if (real[0], _normalized(real[1], path.real_id)) != (
            unknown[0],
            _normalized(unknown[1], random_id),
        ):
            problems.append(f"{name}:\n  real:    {real}\n  unknown: {unknown}")
    return problems


async def _denials(pool: asyncpg.Pool, network: Network) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE outcome = 'denied' "
            "AND organization_id = $1 AND patient_id = $2",
            network.stranger.id,
            network.patient.id,
        )
    return count


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


ENTITY_FIELDS = """__typename
    ... on Patient { id givenName fhir consents { id } referrals { edges { cursor } }
                     attendance { id } outcomeMeasures { id } }
    ... on Referral { id referralStatus: status }
    ... on Consent { id consentStatus: status }"""


def _graphql_paths(stranger: GraphQL, network: Network, r: Records) -> dict[str, Path]:
    def ask(document: str, **fixed: Any) -> Ask:
        async def answer(ident: str) -> Answer:
            response = await stranger.post(document, id=ident, **fixed)
            return response.status_code, response.json()

        return answer

    def entity(typename: str) -> Ask:
        async def answer(ident: str) -> Answer:
            response = await stranger.post(
                "query($reps: [_Any!]!) { _entities(representations: $reps) { "
                f"{ENTITY_FIELDS} }} }}",
                reps=[{"__typename": typename, "id": ident}],
            )
            return response.status_code, response.json()

        return answer

    clinic, stranger_id, supporter = str(network.clinic.id), str(network.stranger.id), str(
        uuid.uuid4()
    )
    return {
        "patient(id)": Path(r.patient, ask("query($id: ID!) { patient(id: $id) { givenName } }")),
        "referral(id)": Path(r.referral, ask("query($id: ID!) { referral(id: $id) { status } }")),
        "node(patient)": Path(r.patient, ask("query($id: ID!) { node(id: $id) { id } }")),
        "node(referral)": Path(r.referral, ask("query($id: ID!) { node(id: $id) { id } }")),
        "node(consent)": Path(r.consent, ask("query($id: ID!) { node(id: $id) { id } }")),
        "_entities(Patient)": Path(r.patient, entity("Patient")),
        "_entities(Referral)": Path(r.referral, entity("Referral")),
        "_entities(Consent)": Path(r.consent, entity("Consent")),
        "consents(patientId)": Path(
            r.patient, ask("query($id: ID!) { consents(patientId: $id) { id } }")
        ),
        "auditEvents(patientId)": Path(
            r.patient, ask("query($id: ID!) { auditEvents(patientId: $id) { id } }")
        ),
        "acceptReferral": Path(
            r.referral,
            ask("mutation($id: ID!) { acceptReferral(input: {referralId: $id}) { id } }"),
        ),
        "assignSupporter": Path(
            r.referral,
            ask(
                "mutation($id: ID!, $s: ID!) { assignSupporter(input: {referralId: $id, "
                "supporterId: $s}) { id } }",
                s=supporter,
            ),
        ),
        "escalateReferral": Path(
            r.referral,
            ask(
                "mutation($id: ID!, $c: ID!) { escalateReferral(input: {referralId: $id, "
                "clinicOrganizationId: $c}) { id } }",
                c=clinic,
            ),
        ),
        "revokeConsent": Path(
            r.consent, ask("mutation($id: ID!) { revokeConsent(input: {consentId: $id}) { id } }")
        ),
        "revokeConsents": Path(
            r.patient,
            ask(
                "mutation($id: ID!, $o: ID!) { revokeConsents(input: {patientId: $id, "
                "recipientOrganizationId: $o}) { id } }",
                o=str(network.peer.id),
            ),
        ),
        "grantConsent": Path(
            r.patient,
            ask(
                "mutation($id: ID!, $o: ID!) { grantConsent(input: {patientId: $id, "
                "recipientOrganizationId: $o, purposes: [TREATMENT], dataClasses: [REFERRAL]}) "
                "{ id } }",
                o=stranger_id,
            ),
        ),
        "createReferral": Path(
            r.patient,
            ask(
                "mutation($id: ID!, $c: ID!) { createReferral(input: {patientId: $id, "
                "performerOrganizationId: $c}) { id } }",
                c=clinic,
            ),
        ),
        "recordOutcomeMeasure": Path(
            r.patient,
            ask(
                "mutation($id: ID!) { recordOutcomeMeasure(input: {patientId: $id, "
                "instrument: GAD7, itemAnswers: [0, 1, 0, 1, 0, 1, 0]}) { id } }"
            ),
        ),
        "recordAttendance": Path(
            r.patient,
            ask(
                "mutation($id: ID!, $s: ID!) { recordAttendance(input: {sessionId: $s, "
                "patientId: $id, status: ATTENDED}) { id } }",
                s=r.stranger_session,
            ),
        ),
    }


def _graphql_not_found(answer: Answer) -> bool:
    status, body = answer
    codes = {error["extensions"]["code"] for error in body.get("errors", ())}
    return status == 200 and codes == {"NOT_FOUND"}


async def test_graphql_answers_a_stranger_the_same_for_real_and_random_ids(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    peer: Fhir,
    clinic: Fhir,
) -> None:
    records = await _records(network, peer, clinic)
    stranger = await GraphQL.as_organization(client, pool, network.stranger)

    problems = await _differences(
        _graphql_paths(stranger, network, records),
        lambda: _denials(pool, network),
        _graphql_not_found,
    )

    assert not problems, "\n".join(problems)


def _fhir_paths(
    stranger: Fhir, network: Network, r: Records, task: dict[str, Any]
) -> dict[str, Path]:
    def get(template: str) -> Ask:
        async def answer(ident: str) -> Answer:
            response = await stranger.get(template.format(id=ident))
            return response.status_code, response.json()

        return answer

    def send(method: str, path: str, body: Callable[[str], Any], **headers: str) -> Ask:
        async def answer(ident: str) -> Answer:
            response = await stranger.request(
                method, path.format(id=ident), body(ident), headers or None
            )
            return response.status_code, response.json()

        return answer

    def batch(template: str) -> Ask:
        async def answer(ident: str) -> Answer:
            bundle = {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{"request": {"method": "GET", "url": template.format(id=ident)}}],
            }
            response = await stranger.request("POST", "", bundle)
            return response.status_code, response.json()

        return answer

    def own_records_only(template: str, ident: str) -> Path:
        return Path(ident, get(template), audited=False)

    by_id = {
        "Patient": r.patient,
        "Task": r.referral,
        "ServiceRequest": r.referral,
        "Consent": r.consent,
        "Procedure": r.procedure,
        "DocumentReference": r.form,
        "Encounter": r.attendance,
        "QuestionnaireResponse": r.outcome,
        "Observation": r.outcome,
        "AuditEvent": r.audit_event,
    }
    paths: dict[str, Path] = {}
    for kind, ident in by_id.items():
        paths[f"read {kind}"] = Path(ident, get(kind + "/{id}"))
        # Referral and Procedure searches run in SQL over the caller's own referrals.
        in_sql = kind in ("Task", "ServiceRequest", "Procedure")
        paths[f"search {kind}?_id"] = Path(ident, get(kind + "?_id={id}"), audited=not in_sql)
        if kind != "AuditEvent":  # no vread: 405 for any id
            paths[f"vread {kind}"] = Path(ident, get(kind + "/{id}/_history/1"))
    for kind in ("Consent", "DocumentReference", "AuditEvent"):
        paths[f"search {kind}?patient"] = Path(r.patient, get(kind + "?patient=Patient/{id}"))
    for kind in ("Observation", "QuestionnaireResponse", "Encounter", "ServiceRequest", "Task",
                 "Procedure"):
        paths[f"search {kind}?patient"] = own_records_only(
            kind + "?patient=Patient/{id}", r.patient
        )
    paths["search ServiceRequest?subject"] = own_records_only(
        "ServiceRequest?subject=Patient/{id}", r.patient
    )
    identifier = network.patient.identifiers[0]
    paths["search Patient?identifier"] = Path(
        identifier.value, get(f"Patient?identifier={identifier.system}|{{id}}")
    )
    paths["search Task?focus"] = own_records_only("Task?focus=ServiceRequest/{id}", r.referral)
    paths["search Procedure?based-on"] = own_records_only(
        "Procedure?based-on=ServiceRequest/{id}", r.referral
    )
    paths["search Consent?source-reference"] = own_records_only(
        "Consent?source-reference=DocumentReference/{id}", r.form
    )
    paths["_include Task:patient"] = own_records_only(
        "Task?_id={id}&_include=Task:patient", r.referral
    )
    paths["_include Task:focus"] = own_records_only("Task?_id={id}&_include=Task:focus", r.referral)
    paths["_revinclude Task:focus"] = own_records_only(
        "ServiceRequest?_id={id}&_revinclude=Task:focus", r.referral
    )
    paths["batch GET Patient"] = Path(r.patient, batch("Patient/{id}"))
    paths["batch GET Task"] = Path(r.referral, batch("Task/{id}"))

    def cancelled(ident: str) -> Any:
        changed = json.loads(json.dumps(task).replace(r.referral, ident))
        return changed | {"status": "cancelled", "statusReason": {"text": "probing"}}

    version = task["meta"]["versionId"]
    paths["update Task"] = Path(
        r.referral, send("PUT", "Task/{id}", cancelled, **{"If-Match": f'W/"{version}"'})
    )
    paths["create Procedure basedOn"] = Path(
        r.referral,
        send(
            "POST",
            "Procedure",
            lambda ident: procedure(
                {"id": ident, "for": {"reference": f"Patient/{r.patient}"}},
                f"Organization/{network.stranger.id}",
            ),
        ),
    )
    paths["create DocumentReference for patient"] = Path(
        r.patient,
        send("POST", "DocumentReference", lambda ident: consent_form(f"Patient/{ident}")),
    )
    return paths


def _fhir_absent(answer: Answer) -> bool:
    """A refusal or nothing: 404, 422 (a reference to nothing on this server), an empty page,
    or a batch whose entries all failed."""
    status, body = answer
    if body.get("type") == "batch-response":
        return all(not e["response"]["status"].startswith("2") for e in body["entry"])
    return status in (404, 422) or (status == 200 and not body.get("entry"))


async def test_fhir_answers_a_stranger_the_same_for_real_and_random_ids(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    network: Network,
    peer: Fhir,
    clinic: Fhir,
) -> None:
    records = await _records(network, peer, clinic)
    stranger = await Fhir.as_organization(client, pool, network.stranger)
    task = await clinic.ok("GET", f"Task/{records.referral}")

    problems = await _differences(
        _fhir_paths(stranger, network, records, task),
        lambda: _denials(pool, network),
        _fhir_absent,
    )

    assert not problems, "\n".join(problems)
