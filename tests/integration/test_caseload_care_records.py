"""A peer supporter reads the consents, signed forms, outcome measures, attendance and
deliveries of their caseload's patients only, at every door (GraphQL, FHIR, the console).

The records of their organization's other patients, and of a colleague's caseload, read
exactly as records never stored (no oracle), each attempt audited as a denied read; a
principal held to no caseload reads them as before.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import pytest
from caseload_support import CaseloadPatients, caseload_patients, holding_caseload, without
from fhir_support import Fhir, entries
from graphql_support import GraphQL
from network import Network
from sql_statements import counting_statements
from starlette.applications import Starlette

from api.db.uow import PostgresUnitOfWork
from api.domain.audit import AuditAction
from api.domain.consents import Consent, DataClass, Purpose
from api.domain.documents import ConsentForm, source_reference_of
from api.domain.errors import NotFound
from api.domain.outcomes import Instrument, OutcomeMeasure
from api.domain.patients import Patient
from api.domain.principal import Principal
from api.domain.procedures import HCPCS_SYSTEM, ProcedureStatus
from api.domain.programs import DeliveryMode
from api.domain.referrals import Coding, Transition
from api.domain.sessions import Attendance, AttendanceStatus, PeerSession, SessionFormat
from api.domain.staff import StaffRole
from api.services import (
    care_reads,
    consent_forms,
    consents,
    outcomes,
    procedures,
    referrals,
    sessions,
    users,
)
from api.services.filters import ProcedureFilter
from api.services.pagination import PageRequest

_SHARED = (DataClass.DEMOGRAPHICS, DataClass.REFERRAL, DataClass.SESSIONS, DataClass.OUTCOMES)
PDF = b"%PDF-1.4\n% signed consent form (test)\n%%EOF\n"


@dataclass(frozen=True)
class _Records:
    """One patient's records, each readable by the peer organization's own client."""

    form: ConsentForm
    consent: Consent  # cites `form`
    measure: OutcomeMeasure
    attendance: Attendance
    procedure_id: UUID | None  # a delivery on their referral (the walk-in has none)


@dataclass(frozen=True)
class _Caseload:
    people: CaseloadPatients
    session: PeerSession
    records: dict[UUID, _Records]

    def of(self, patient: Patient) -> _Records:
        return self.records[patient.id]


async def _records(network: Network, patient: Patient, session: PeerSession) -> _Records:
    holder = (
        network.as_peer
        if patient.managing_organization_id == network.peer.id
        else network.as_clinic
    )
    recipient = network.clinic if holder is network.as_peer else network.peer
    form = await consent_forms.record_consent_form(
        network.uow(),
        holder,
        consent_forms.RecordConsentForm(patient.id, "application/pdf", data=PDF),
    )
    consent = await consents.grant_consent(
        network.uow(),
        holder,
        consents.GrantConsent(
            patient_id=patient.id,
            recipient_organization_id=recipient.id,
            purposes=frozenset({Purpose.TREATMENT}),
            data_classes=frozenset(_SHARED),
            source_reference=source_reference_of(form.id),
        ),
    )
    measure = await outcomes.record_outcome_measure(
        network.uow(),
        network.as_peer,
        outcomes.RecordOutcomeMeasure(
            patient_id=patient.id, instrument=Instrument.GAD7, item_answers=(0, 1, 0, 1, 0, 1, 0)
        ),
    )
    attendance = await sessions.record_attendance(
        network.uow(),
        network.as_peer,
        sessions.RecordAttendance(
            session_id=session.id, patient_id=patient.id, status=AttendanceStatus.ATTENDED
        ),
    )
    return _Records(form, consent, measure, attendance, None)


async def _delivered(network: Network, referral_id: UUID) -> UUID:
    await referrals.transition_referral(
        network.uow(), network.as_peer, referral_id, Transition.START
    )
    view = await procedures.record_procedure(
        network.uow(),
        network.as_peer,
        procedures.RecordProcedure(
            referral_id=referral_id,
            status=ProcedureStatus.COMPLETED,
            codes=(Coding(HCPCS_SYSTEM, "H0038"),),
            units=2,
        ),
    )
    return view.procedure.id


async def _caseload(network: Network) -> _Caseload:
    people = await caseload_patients(network, *_SHARED)
    start = datetime.now(UTC) - timedelta(days=1)
    session = await sessions.record_session(
        network.uow(),
        network.as_peer,
        sessions.RecordSession(
            program_id=network.program.id,
            format=SessionFormat.GROUP,
            delivery_mode=DeliveryMode.IN_PERSON,
            starts_at=start,
            ends_at=start + timedelta(minutes=60),
            facilitator_ids=(network.supporter.id,),
        ),
    )
    records: dict[UUID, _Records] = {}
    for patient in (people.in_caseload, *people.hidden):
        kept = await _records(network, patient, session)
        referral_id = people.referral_of.get(patient.id)
        if referral_id is not None:
            kept = replace(kept, procedure_id=await _delivered(network, referral_id))
        records[patient.id] = kept
    return _Caseload(people, session, records)


def _as_supporter(network: Network) -> Principal:
    return replace(network.as_peer, caseload_of=network.supporter.id)


async def _reads_of(pool: asyncpg.Pool, patient_id: UUID, outcome: str) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT operation, coalesce(detail_code, '') AS code FROM audit_events "
        "WHERE patient_id = $1 AND outcome = $2 AND action = 'R' ORDER BY operation",
        patient_id,
        outcome,
    )
    return [(row["operation"], row["code"]) for row in rows]


async def test_a_principal_held_to_no_caseload_reads_every_record_as_before(
    network: Network,
) -> None:
    caseload = await _caseload(network)
    everyone = [caseload.people.in_caseload, *caseload.people.hidden]
    as_peer = network.as_peer
    for patient in everyone:
        kept = caseload.of(patient)
        assert [c.id for c in await consents.list_consents(network.uow(), as_peer, patient.id)]
        (form,) = await consent_forms.get_consent_forms(network.uow(), as_peer, [kept.form.id])
        assert isinstance(form, ConsentForm)
        (measures,) = await outcomes.outcomes_for_patients(network.uow(), as_peer, [patient.id])
        assert [m.id for m in measures] == [kept.measure.id]
    attended = await sessions.attendance_for_sessions(
        network.uow(), as_peer, [caseload.session.id]
    )
    assert {a.patient_id for a in attended[0]} == {p.id for p in everyone}
    delivered = await procedures.search_procedures(
        network.uow(), as_peer, ProcedureFilter(), PageRequest()
    )
    assert len(delivered.items) == 2


async def test_service_reads_of_a_supporter_stop_at_their_caseload(
    network: Network, pool: asyncpg.Pool
) -> None:
    caseload = await _caseload(network)
    people, supporter = caseload.people, _as_supporter(network)
    mine = caseload.of(people.in_caseload)
    before = {p.id: await _reads_of(pool, p.id, "success") for p in people.hidden}

    (measures,) = await outcomes.outcomes_for_patients(
        network.uow(), supporter, [people.in_caseload.id]
    )
    assert [m.id for m in measures] == [mine.measure.id]
    (attended,) = await sessions.attendance_for_sessions(
        network.uow(), supporter, [caseload.session.id]
    )
    assert [a.id for a in attended] == [mine.attendance.id]
    delivered = await procedures.search_procedures(
        network.uow(), supporter, ProcedureFilter(), PageRequest()
    )
    assert [v.procedure.id for v in delivered.items] == [mine.procedure_id]
    cited = await consents.consents_citing_form(network.uow(), supporter, mine.form.id)
    assert [c.id for c in cited] == [mine.consent.id]

    for hidden in people.hidden:
        kept = caseload.of(hidden)
        with pytest.raises(NotFound):
            await consents.list_consents(network.uow(), supporter, hidden.id)
        with pytest.raises(NotFound):
            await consent_forms.consent_forms_of_patient(network.uow(), supporter, hidden.id)
        (listed,) = await consents.consents_of_patients(network.uow(), supporter, [hidden.id])
        assert isinstance(listed, NotFound) and str(listed) == str(NotFound("Patient", hidden.id))
        assert await consents.consents_citing_form(network.uow(), supporter, kept.form.id) == []
        for read, ident in (
            (consents.get_consents, kept.consent.id),
            (consent_forms.get_consent_forms, kept.form.id),
            (care_reads.get_outcome_measures, kept.measure.id),
            (sessions.get_attendance, kept.attendance.id),
        ):
            (result,) = await read(network.uow(), supporter, [ident])
            assert isinstance(result, NotFound), (read, result)
        if kept.procedure_id is not None:
            (delivery,) = await procedures.get_procedures(
                network.uow(), supporter, [kept.procedure_id]
            )
            assert isinstance(delivery, NotFound)
        for listing in (outcomes.outcomes_for_patients, sessions.attendance_for_patients):
            assert await listing(network.uow(), supporter, [hidden.id]) == [[]]
        found = await procedures.search_procedures(
            network.uow(), supporter, ProcedureFilter(patient_id=hidden.id), PageRequest()
        )
        assert found.items == ()
        assert await _reads_of(pool, hidden.id, "success") == before[hidden.id]
        denied = await _reads_of(pool, hidden.id, "denied")
        assert {code for _, code in denied} == {"NOT_FOUND"}
        assert {operation for operation, _ in denied} >= {
            "listConsents",
            "listConsentForms",
            "readConsent",
            "readConsentForm",
            "readOutcomeMeasure",
            "readAttendance",
        }


async def test_a_supporter_records_care_only_for_their_caseload(
    network: Network, pool: asyncpg.Pool
) -> None:
    people = await caseload_patients(network)
    supporter = _as_supporter(network)
    for patient_id in (people.of_organization.id, uuid.uuid4()):
        with pytest.raises(NotFound) as refused:
            await outcomes.record_outcome_measure(
                network.uow(),
                supporter,
                outcomes.RecordOutcomeMeasure(
                    patient_id=patient_id,
                    instrument=Instrument.GAD7,
                    item_answers=(0, 0, 0, 0, 0, 0, 0),
                ),
            )
        assert str(refused.value) == str(NotFound("Patient", patient_id))
    denied = await pool.fetch(
        "SELECT action, detail_code FROM audit_events WHERE patient_id = $1 AND outcome = 'denied'",
        people.of_organization.id,
    )
    assert [(r["action"], r["detail_code"]) for r in denied] == [
        (AuditAction.CREATE.value, "NOT_FOUND")
    ]
    recorded = await outcomes.record_outcome_measure(
        network.uow(),
        supporter,
        outcomes.RecordOutcomeMeasure(
            patient_id=people.in_caseload.id,
            instrument=Instrument.GAD7,
            item_answers=(0, 0, 0, 0, 0, 0, 0),
        ),
    )
    assert recorded.patient_id == people.in_caseload.id


_CONSENTS = "query ($id: ID!) { consents(patientId: $id) { id } }"
_NODE = "query ($id: ID!) { node(id: $id) { id } }"
_SESSION = (
    "query ($id: ID!) { node(id: $id) { ... on Session { attendance { id patientId } } } }"
)
_PATIENT_RECORDS = (
    "query ($id: ID!) { patient(id: $id) { consents { id } attendance { id } "
    "outcomeMeasures { id } } }"
)


async def test_graphql_care_reads_of_a_supporter_stop_at_their_caseload(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    caseload = await _caseload(network)
    people = caseload.people
    graphql = await GraphQL.as_organization(client, pool, network.peer)
    assert graphql.token is not None
    for hidden in people.hidden:  # the organization's own client reads them
        listed = await graphql.data(_CONSENTS, id=str(hidden.id))
        assert [c["id"] for c in listed["consents"]]

    holding_caseload(app, graphql.token, network.supporter.id)
    mine = caseload.of(people.in_caseload)
    shown = await graphql.data(_PATIENT_RECORDS, id=str(people.in_caseload.id))
    assert mine.consent.id in {UUID(c["id"]) for c in shown["patient"]["consents"]}
    assert [a["id"] for a in shown["patient"]["attendance"]] == [str(mine.attendance.id)]
    assert [m["id"] for m in shown["patient"]["outcomeMeasures"]] == [str(mine.measure.id)]
    attended = await graphql.data(_SESSION, id=str(caseload.session.id))
    assert attended["node"]["attendance"] == [
        {"id": str(mine.attendance.id), "patientId": str(people.in_caseload.id)}
    ]

    unknown = uuid.uuid4()
    no_patient = without(await graphql.run(_CONSENTS, id=str(unknown)), unknown)
    assert "NOT_FOUND" in no_patient
    no_node = without(await graphql.run(_NODE, id=str(unknown)), unknown)
    for hidden in people.hidden:
        kept = caseload.of(hidden)
        assert without(await graphql.run(_CONSENTS, id=str(hidden.id)), hidden.id) == no_patient
        answer = await graphql.run(_NODE, id=str(kept.consent.id))
        assert without(answer, kept.consent.id) == no_node
        assert await _reads_of(pool, hidden.id, "denied")


async def _not_found(fhir: Fhir, path: str, ident: UUID) -> str:
    answer = await fhir.get(path)
    assert answer.status_code == 404, (path, answer.text)
    return without(answer.json(), ident)


async def test_fhir_care_reads_and_searches_of_a_supporter_stop_at_their_caseload(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    caseload = await _caseload(network)
    people = caseload.people
    fhir = await Fhir.as_organization(client, pool, network.peer)
    assert fhir.token is not None
    holding_caseload(app, fhir.token, network.supporter.id)
    mine = caseload.of(people.in_caseload)
    before = {p.id: await _reads_of(pool, p.id, "success") for p in people.hidden}

    read = await fhir.ok("GET", f"Consent/{mine.consent.id}")
    assert read["id"] == str(mine.consent.id)
    found = await fhir.ok("GET", f"Consent?patient={people.in_caseload.id}")
    assert str(mine.consent.id) in [e["id"] for e in entries(found)]
    assert (await fhir.ok("GET", f"DocumentReference/{mine.form.id}"))["id"] == str(mine.form.id)
    measured = await fhir.ok("GET", f"QuestionnaireResponse?patient={people.in_caseload.id}")
    assert [e["id"] for e in entries(measured)] == [str(mine.measure.id)]
    attended = await fhir.ok("GET", f"Encounter?patient={people.in_caseload.id}")
    assert [e["id"] for e in entries(attended)] == [str(mine.attendance.id)]
    delivered = await fhir.ok("GET", "Procedure")
    assert [e["id"] for e in entries(delivered)] == [str(mine.procedure_id)]

    unknown = uuid.uuid4()
    unknown_patient = await fhir.get(f"Consent?patient={unknown}")
    never_stored = {
        kind: await _not_found(fhir, f"{kind}/{unknown}", unknown)
        for kind in ("Consent", "DocumentReference", "QuestionnaireResponse", "Observation",
                     "Encounter", "Procedure")
    }
    for hidden in people.hidden:
        kept = caseload.of(hidden)
        by_id = {
            "Consent": kept.consent.id,
            "DocumentReference": kept.form.id,
            "QuestionnaireResponse": kept.measure.id,
            "Observation": kept.measure.id,
            "Encounter": kept.attendance.id,
        }
        if kept.procedure_id is not None:
            by_id["Procedure"] = kept.procedure_id
        for kind, ident in by_id.items():
            assert await _not_found(fhir, f"{kind}/{ident}", ident) == never_stored[kind], kind

        listed = await fhir.get(f"Consent?patient={hidden.id}")
        assert listed.status_code == unknown_patient.status_code
        assert without(listed.json(), hidden.id) == without(unknown_patient.json(), unknown)
        forms = await fhir.get(f"DocumentReference?patient={hidden.id}")
        unknown_forms = await fhir.get(f"DocumentReference?patient={unknown}")
        assert forms.status_code == unknown_forms.status_code
        assert without(forms.json(), hidden.id) == without(unknown_forms.json(), unknown)
        for search in (
            f"Consent?_id={kept.consent.id}&_include=Consent:source-reference",
            f"Consent?source-reference=DocumentReference/{kept.form.id}",
            f"DocumentReference?_id={kept.form.id}",
            f"QuestionnaireResponse?patient={hidden.id}",
            f"Observation?patient={hidden.id}",
            f"Encounter?patient={hidden.id}",
            f"Encounter?_id={kept.attendance.id}",
            f"Procedure?patient={hidden.id}",
        ):
            assert entries(await fhir.ok("GET", search)) == [], search
        both = await fhir.ok(
            "GET",
            f"Consent?_id={kept.consent.id},{mine.consent.id}&_include=Consent:source-reference",
        )
        assert {(e["resourceType"], e["id"]) for e in entries(both)} == {
            ("Consent", str(mine.consent.id)),
            ("DocumentReference", str(mine.form.id)),
        }
        assert await _reads_of(pool, hidden.id, "success") == before[hidden.id]
        assert {code for _, code in await _reads_of(pool, hidden.id, "denied")} == {"NOT_FOUND"}


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"


async def _sign_in_as_supporter(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    email = f"supporter-{secrets.token_hex(3)}@peer.example"
    await users.create_user(
        PostgresUnitOfWork(pool),
        users.CreateStaffUser(
            network.peer.id,
            email,
            StaffRole.SUPPORTER,
            PASSWORD,
            supporter_id=network.supporter.id,
        ),
    )
    client.cookies.clear()
    form = await client.get("/console/login")
    token = _CSRF.search(form.text)
    assert token is not None
    signed_in = await client.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed_in.status_code == 303, signed_in.text


async def test_console_form_downloads_of_a_supporter_stop_at_their_caseload(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    caseload = await _caseload(network)
    await _sign_in_as_supporter(client, pool, network)
    mine = caseload.of(caseload.people.in_caseload)
    download = await client.get(f"/console/consent-forms/{mine.form.id}")
    assert download.status_code == 200
    assert download.content == PDF

    unknown = uuid.uuid4()
    absent = await client.get(f"/console/consent-forms/{unknown}")
    assert absent.status_code == 404
    for hidden in caseload.people.hidden:
        form_id = caseload.of(hidden).form.id
        refused = await client.get(f"/console/consent-forms/{form_id}")
        assert refused.status_code == 404
        assert refused.text.replace(str(form_id), "<id>") == absent.text.replace(
            str(unknown), "<id>"
        )
        assert await _reads_of(pool, hidden.id, "denied") == [("readConsentForm", "NOT_FOUND")]
        page = await client.get(f"/console/patients/{hidden.id}")
        assert page.status_code == 404



_CASELOAD_LOOKUP = "SELECT DISTINCT patient_id FROM referrals"


async def test_a_caseload_costs_a_supporter_one_lookup_and_anyone_else_nothing(
    app: Starlette, client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    """Each care read runs the statements it ran before for a principal held to no caseload;
    a supporter's adds the one caseload lookup (the delivery search narrows in its own)."""
    caseload = await _caseload(network)
    mine = caseload.of(caseload.people.in_caseload)
    patient = caseload.people.in_caseload.id
    organization = await Fhir.as_organization(client, pool, network.peer)
    supporter = await Fhir.as_organization(client, pool, network.peer)
    assert supporter.token is not None
    holding_caseload(app, supporter.token, network.supporter.id)
    paths = [
        f"Consent/{mine.consent.id}",
        f"Consent?patient={patient}",
        f"Consent?source-reference=DocumentReference/{mine.form.id}",
        f"DocumentReference/{mine.form.id}",
        f"DocumentReference?patient={patient}",
        f"QuestionnaireResponse/{mine.measure.id}",
        f"Observation?patient={patient}",
        f"Encounter/{mine.attendance.id}",
        f"Encounter?patient={patient}",
        f"Procedure/{mine.procedure_id}",
    ]
    for fhir in (organization, supporter):
        await fhir.ok("GET", paths[0])  # warm the token cache
    for path in paths:
        with counting_statements(app) as counted:
            await organization.ok("GET", path)
        theirs = counted.statements
        with counting_statements(app) as counted:
            await supporter.ok("GET", path)
        held = counted.statements
        assert not [s for s in theirs if _CASELOAD_LOOKUP in s], (path, theirs)
        assert len([s for s in held if _CASELOAD_LOOKUP in s]) == 1, (path, held)
        assert len(held) == len(theirs) + 1, (path, theirs, held)
    search = f"Procedure?patient={patient}"
    with counting_statements(app) as counted:
        await organization.ok("GET", search)
    theirs = counted.statements
    with counting_statements(app) as counted:
        assert [e["id"] for e in entries(await supporter.ok("GET", search))] == [
            str(mine.procedure_id)
        ]
    assert len(counted.statements) == len(theirs), (theirs, counted.statements)
