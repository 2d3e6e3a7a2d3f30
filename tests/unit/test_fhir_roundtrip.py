"""Domain → FHIR → domain is lossless for what we store (FHIR has no creation time for some
types: there `created_at` is not carried, and the comparison takes `updated_at` for it).

Read back as a client would send it, a record's FHIR form keeps what the record does not model
(its verbatim elements); mapped again, it is the same resource."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir_strategies import (
    attendances,
    audit_events,
    consent_forms,
    consents,
    measures,
    organizations,
    patients,
    procedures,
    programs,
    referrals,
    sessions,
    supporters,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from api.domain.audit import AuditEvent
from api.domain.consents import Consent
from api.domain.documents import ConsentForm
from api.domain.organizations import Organization
from api.domain.outcomes import OutcomeMeasure
from api.domain.patients import Patient
from api.domain.procedures import Procedure
from api.domain.programs import PeerProgram
from api.domain.referrals import Referral
from api.domain.sessions import Attendance, PeerSession
from api.domain.supporters import PeerSupporter
from api.domain.verbatim import NOTHING_KEPT
from api.integrations.fhir.resources.audit import from_fhir_audit_event, to_fhir_audit_event
from api.integrations.fhir.resources.consents import from_fhir_consent, to_fhir_consent
from api.integrations.fhir.resources.datatypes import check_shapes
from api.integrations.fhir.resources.documents import (
    from_fhir_document_reference,
    to_fhir_document_reference,
)
from api.integrations.fhir.resources.measures import (
    from_fhir_outcome_measure,
    to_fhir_observation,
    to_fhir_questionnaire_response,
)
from api.integrations.fhir.resources.organizations import (
    from_fhir_organization,
    to_fhir_organization,
)
from api.integrations.fhir.resources.patients import from_fhir_patient, to_fhir_patient
from api.integrations.fhir.resources.procedures import from_fhir_procedure, to_fhir_procedure
from api.integrations.fhir.resources.programs import (
    from_fhir_healthcare_service,
    to_fhir_healthcare_service,
)
from api.integrations.fhir.resources.referrals import (
    from_fhir_referral,
    to_fhir_service_request,
    to_fhir_task,
)
from api.integrations.fhir.resources.sessions import (
    from_fhir_attendance,
    from_fhir_session,
    to_fhir_attendance_encounter,
    to_fhir_session_encounter,
)
from api.integrations.fhir.resources.supporters import (
    from_fhir_peer_supporter,
    to_fhir_practitioner,
    to_fhir_practitioner_role,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)
RUNS = settings(max_examples=60, deadline=None)


def _no_created(record: Any) -> Any:
    return replace(record, created_at=record.updated_at)


def _modelled(record: Any) -> Any:
    """The record without the elements a client's copy of it keeps as sent."""
    return replace(record, verbatim=NOTHING_KEPT)


@RUNS
@given(organizations)
def test_organization_round_trips(organization: Organization) -> None:
    assert from_fhir_organization(to_fhir_organization(organization)) == organization


@RUNS
@given(programs)
def test_peer_program_round_trips_through_healthcare_service(program: PeerProgram) -> None:
    assert from_fhir_healthcare_service(to_fhir_healthcare_service(program)) == program


@RUNS
@given(supporters())
def test_peer_supporter_round_trips_through_practitioner_and_role(
    supporter: PeerSupporter,
) -> None:
    back = from_fhir_peer_supporter(
        to_fhir_practitioner(supporter), to_fhir_practitioner_role(supporter)
    )
    assert back == supporter


@RUNS
@given(patients)
def test_patient_round_trips(patient: Patient) -> None:
    """A patient registered through GraphQL (no FHIR source): its columns survive FHIR."""
    back = from_fhir_patient(to_fhir_patient(patient))
    assert replace(back, verbatim=NOTHING_KEPT) == patient
    assert to_fhir_patient(back) == to_fhir_patient(patient)  # the source says the same


@RUNS
@given(consents())
def test_consent_round_trips_with_its_source(consent: Consent) -> None:
    resource = to_fhir_consent(consent, now=NOW)
    again = from_fhir_consent(resource)
    assert _modelled(again) == consent
    assert to_fhir_consent(again, now=NOW) == resource


@RUNS
@given(consents())
def test_a_recorded_source_form_is_a_reference_and_a_url_an_attachment(consent: Consent) -> None:
    resource = to_fhir_consent(consent, now=NOW)
    source = consent.source_reference or ""
    assert ("sourceReference" in resource) == source.startswith("DocumentReference/")
    assert ("sourceAttachment" in resource) == source.startswith("https://")


@RUNS
@given(consent_forms())
def test_consent_form_round_trips_through_document_reference(form: ConsentForm) -> None:
    resource = to_fhir_document_reference(form)
    again = from_fhir_document_reference(resource)
    assert _modelled(again) == form
    assert to_fhir_document_reference(again) == resource
    attachment = resource["content"][0]["attachment"]
    assert ("data" in attachment) == (form.data is not None) == ("hash" in attachment)


@RUNS
@given(referrals())
def test_referral_round_trips_through_service_request_and_task(referral: Referral) -> None:
    back = from_fhir_referral(to_fhir_service_request(referral), to_fhir_task(referral))
    assert back == referral


@RUNS
@given(procedures())
def test_procedure_round_trips(procedure: Procedure) -> None:
    resource = to_fhir_procedure(procedure)
    again = from_fhir_procedure(resource)
    assert _modelled(again) == procedure
    assert to_fhir_procedure(again) == resource


@RUNS
@given(referrals(), st.lists(st.uuids(), max_size=3))
def test_a_task_lists_the_referral_procedures_as_output(referral: Referral, ids: list[Any]) -> None:
    task = to_fhir_task(referral, outputs=ids)
    listed = [o["valueReference"]["reference"] for o in task.get("output", ())]
    assert listed == [f"Procedure/{i}" for i in ids]
    assert from_fhir_referral(to_fhir_service_request(referral), task) == referral


@RUNS
@given(sessions())
def test_session_round_trips_through_encounter(session: PeerSession) -> None:
    assert from_fhir_session(to_fhir_session_encounter(session)) == session


@RUNS
@given(attendances())
def test_attendance_round_trips_through_encounter(pair: tuple[Attendance, PeerSession]) -> None:
    attendance, session = pair
    assert from_fhir_attendance(to_fhir_attendance_encounter(attendance, session)) == attendance


@RUNS
@given(measures())
def test_outcome_measure_round_trips_through_questionnaire_response(
    measure: OutcomeMeasure,
) -> None:
    resource = to_fhir_questionnaire_response(measure)
    again = from_fhir_outcome_measure(resource)
    assert _modelled(again) == _no_created(measure)
    assert to_fhir_questionnaire_response(again) == resource
    observation = to_fhir_observation(measure)
    assert observation["valueInteger"] == measure.total


@RUNS
@given(audit_events)
def test_audit_event_round_trips(event: AuditEvent) -> None:
    assert from_fhir_audit_event(to_fhir_audit_event(event)) == event


@pytest.fixture(autouse=True)
def _shape_checks() -> Iterator[None]:
    check_shapes(True)
    yield
    check_shapes(False)


_MAPPERS: list[tuple[str, Callable[[Any], Any]]] = [
    ("referral", lambda r: [to_fhir_service_request(r), to_fhir_task(r, outputs=[r.id])]),
    ("consent", lambda c: [to_fhir_consent(c, now=NOW)]),
    ("procedure", lambda p: [to_fhir_procedure(p), to_fhir_procedure(p, redacted=True)]),
    ("form", lambda f: [to_fhir_document_reference(f)]),
    ("patient", lambda p: [to_fhir_patient(p)]),
    ("supporter", lambda s: [to_fhir_practitioner(s), to_fhir_practitioner_role(s)]),
    ("program", lambda p: [to_fhir_healthcare_service(p)]),
    ("measure", lambda m: [to_fhir_questionnaire_response(m), to_fhir_observation(m)]),
    ("attendance", lambda pair: [to_fhir_attendance_encounter(*pair)]),
    ("audit", lambda e: [to_fhir_audit_event(e)]),
    ("organization", lambda o: [to_fhir_organization(o)]),
]


@RUNS
@given(
    st.one_of(
        referrals().map(lambda r: ("referral", r)),
        consents().map(lambda c: ("consent", c)),
        procedures().map(lambda p: ("procedure", p)),
        consent_forms().map(lambda f: ("form", f)),
        patients.map(lambda p: ("patient", p)),
        supporters().map(lambda s: ("supporter", s)),
        programs.map(lambda p: ("program", p)),
        measures().map(lambda m: ("measure", m)),
        attendances().map(lambda a: ("attendance", a)),
        audit_events.map(lambda e: ("audit", e)),
        organizations.map(lambda o: ("organization", o)),
    )
)
def test_production_output_is_exactly_what_the_r4b_models_shape(case: tuple[str, Any]) -> None:
    """With shape checks off (production) the mappers emit what the R4B models would."""
    kind, record = case
    mapper = dict(_MAPPERS)[kind]
    checked = mapper(record)
    check_shapes(False)
    try:
        assert mapper(record) == checked
    finally:
        check_shapes(True)
