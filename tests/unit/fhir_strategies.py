"""Hypothesis strategies for every record PeerBridge maps to FHIR (shared by the round-trip
tests and the validator contract tests)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import strategies as st

from api.domain.audit import AuditAction, AuditEvent, AuditOutcome, AuditRecord
from api.domain.consents import Consent, DataClass, Purpose
from api.domain.documents import CONTENT_TYPES, ConsentForm, source_reference_of
from api.domain.locations import (
    ADDRESS_TYPES,
    ADDRESS_USES,
    CONTACT_SYSTEMS,
    CONTACT_USES,
    Address,
    Concept,
    ContactPoint,
    Location,
    LocationMode,
    LocationStatus,
    Period,
    Position,
)
from api.domain.organizations import Organization, OrganizationKind
from api.domain.outcomes import INSTRUMENTS, Instrument, OutcomeMeasure
from api.domain.patients import Gender, Patient, PatientIdentifier
from api.domain.procedures import HCPCS_SYSTEM, SNOMED_SYSTEM, Procedure, ProcedureStatus
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.domain.referrals import (
    PEER_SUPPORT_SERVICES,
    Coding,
    Direction,
    OrderIdentifier,
    Priority,
    Referral,
    ReferralStatus,
)
from api.domain.sessions import (
    Attendance,
    AttendanceStatus,
    PeerSession,
    SessionFormat,
    billing_for,
)
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    PeerSupporter,
    SupervisorKind,
)

_ALPHABET = st.characters(codec="utf-8", categories=("L", "N"), max_codepoint=0x24F)
text = st.text(_ALPHABET, min_size=1, max_size=30).map(str.strip).filter(bool)
code = st.from_regex(r"\A[a-z0-9][a-z0-9.\-]{0,15}\Z")
uri = st.sampled_from(
    ["http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:1.2.3"]
)
stamps = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
days = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 1, 1))
versions = st.integers(1, 10_000)
languages = st.lists(st.sampled_from(["en", "es", "fr", "vi", "zh-Hans"]), unique=True, max_size=3)


def _classes(
    required: frozenset[DataClass] = frozenset(),
) -> st.SearchStrategy[frozenset[DataClass]]:
    return st.frozensets(st.sampled_from(DataClass), min_size=1).map(lambda s: s | required)


organizations = st.builds(
    lambda id, name, kind, npi, active, version, at: Organization(
        id, name, kind, npi, active, version, at, at
    ),
    st.uuids(),
    text,
    st.sampled_from(OrganizationKind),
    st.none() | st.from_regex(r"\A[0-9]{10}\Z"),
    st.booleans(),
    versions,
    stamps,
)

programs = st.builds(
    lambda id, org, name, kind, desc, langs, modes, elig, cap, acc, sud, v, at, locs: PeerProgram(
        id, org, name, kind, desc, tuple(langs), tuple(modes), elig, cap, acc, sud, v, at, at,
        tuple(locs),
    ),
    st.uuids(),
    st.uuids(),
    text,
    st.sampled_from(ProgramKind),
    st.just("") | text,
    languages,
    st.lists(st.sampled_from(DeliveryMode), unique=True, min_size=1),
    st.just("") | text,
    st.none() | st.integers(1, 500),
    st.booleans(),
    st.booleans(),
    versions,
    stamps,
    st.lists(st.uuids(), unique=True, max_size=3),
)


_periods = st.builds(
    Period, st.none() | days.map(date.isoformat), st.none() | st.just("2031-01-01T00:00:00Z")
).filter(lambda p: p.start or p.end)
_addresses = st.builds(
    Address,
    use=st.none() | st.sampled_from(sorted(ADDRESS_USES)),
    type=st.none() | st.sampled_from(sorted(ADDRESS_TYPES)),
    text=st.none() | text,
    lines=st.lists(text, max_size=2).map(tuple),
    city=st.none() | text,
    district=st.none() | text,
    state=st.none() | text,
    postal_code=st.none() | code,
    country=st.none() | st.just("US"),
    period=st.none() | _periods,
).filter(lambda a: any(v not in (None, ()) for v in vars(a).values()))
_contacts = st.builds(
    ContactPoint,
    system=st.sampled_from(sorted(CONTACT_SYSTEMS)),
    value=st.none() | text,
    use=st.none() | st.sampled_from(sorted(CONTACT_USES)),
    rank=st.none() | st.integers(1, 9),
    period=st.none() | _periods,
)
locations = st.builds(
    Location,
    id=st.uuids(),
    organization_id=st.uuids(),
    name=text,
    description=st.none() | text,
    status=st.none() | st.sampled_from(LocationStatus),
    mode=st.none() | st.sampled_from(LocationMode),
    physical_type=st.none()
    | st.builds(
        Concept,
        st.lists(st.builds(Coding, uri, code, st.none() | text), max_size=2).map(tuple),
        st.none() | text,
    ).filter(lambda c: c.codings or c.text),
    address=st.none() | _addresses,
    telecom=st.lists(_contacts, max_size=3).map(tuple),
    position=st.none()
    | st.builds(
        Position,
        st.floats(-180, 180, allow_nan=False),
        st.floats(-90, 90, allow_nan=False),
        st.none() | st.floats(-400, 9000, allow_nan=False),
    ),
    version=versions,
    created_at=stamps,
    updated_at=stamps,
)


@st.composite
def certifications(draw: st.DrawFn) -> Certification:
    issued = draw(days)
    return Certification(
        type=draw(text),
        subtype=draw(st.sampled_from(CertificationSubtype)),
        issuing_body=draw(text),
        jurisdiction=draw(text),
        number=draw(code),
        status=draw(st.sampled_from(CertificationStatus)),
        issued_on=issued,
        expires_on=draw(st.none() | st.just(issued + timedelta(days=draw(st.integers(0, 2000))))),
        last_verified_on=draw(st.none() | days),
    )


@st.composite
def supporters(draw: st.DrawFn) -> PeerSupporter:
    at = draw(stamps)
    supervised = draw(st.booleans())
    return PeerSupporter(
        id=draw(st.uuids()),
        organization_id=draw(st.uuids()),
        display_name=draw(text),
        lived_experience=tuple(draw(st.lists(st.sampled_from(LivedExperience), unique=True))),
        languages=tuple(draw(languages)),
        certifications=tuple(draw(st.lists(certifications(), max_size=3))),
        supervisor_name=draw(text) if supervised else None,
        supervisor_kind=draw(st.sampled_from(SupervisorKind)) if supervised else None,
        max_caseload=draw(st.integers(0, 500)),
        active=draw(st.booleans()),
        version=draw(versions),
        created_at=at,
        updated_at=at,
    )


patients = st.builds(
    lambda id, org, ids, given, family, born, gender, phone, email, lang, v, at: Patient(
        id, org, tuple(ids), given, family, born, gender, phone, email, lang, v, at, at
    ),
    st.uuids(),
    st.uuids(),
    st.lists(
        st.builds(
            PatientIdentifier,
            st.sampled_from(["urn:oid:2.16.840.1.1", "https://mrn.example.org"]),
            code,
        ),
        unique_by=lambda i: i.system,
        max_size=2,
    ),
    text,
    text,
    st.none() | days,
    st.sampled_from(Gender),
    st.none() | st.from_regex(r"\A\+1[0-9]{10}\Z"),
    st.none() | st.from_regex(r"\A[a-z]{1,8}@example\.org\Z"),
    st.none() | st.sampled_from(["en", "es"]),
    versions,
    stamps,
)


@st.composite
def consents(draw: st.DrawFn) -> Consent:
    start = draw(stamps)
    created = draw(stamps)
    revoked = draw(st.booleans())
    return Consent(
        id=draw(st.uuids()),
        patient_id=draw(st.uuids()),
        recorded_by_organization_id=draw(st.uuids()),
        recipient_organization_id=draw(st.uuids()),
        purposes=draw(st.frozensets(st.sampled_from(Purpose), min_size=1)),
        data_classes=draw(_classes()),
        period_start=start,
        period_end=draw(st.none() | st.just(start + timedelta(days=draw(st.integers(1, 900))))),
        revoked=revoked,
        revoked_at=draw(stamps) if revoked else None,
        revocation_reason=draw(st.none() | text) if revoked else None,
        source_reference=draw(
            st.none()
            | st.just("https://docs.example.org/consent/1")
            | st.uuids().map(source_reference_of)
        ),
        version=draw(versions),
        created_at=created,
        updated_at=draw(stamps),
    )


service_codes = st.sampled_from(
    [Coding(SNOMED_SYSTEM, code, display) for code, display in PEER_SUPPORT_SERVICES.items()]
)


@st.composite
def referrals(draw: st.DrawFn) -> Referral:
    status = draw(st.sampled_from(ReferralStatus))
    created = draw(stamps)
    return Referral(
        id=draw(st.uuids()),
        direction=draw(st.sampled_from(Direction)),
        requester_organization_id=draw(st.uuids()),
        performer_organization_id=draw(st.uuids()),
        program_id=draw(st.none() | st.uuids()),
        patient_id=draw(st.uuids()),
        priority=draw(st.sampled_from(Priority)),
        reason_codes=tuple(
            draw(st.lists(st.builds(Coding, uri, code, st.none() | text), max_size=3))
        ),
        reason_text=draw(st.none() | text),
        shared_data_classes=draw(_classes(frozenset({DataClass.REFERRAL}))),
        consent_id=draw(st.none() | st.uuids()),
        status=status,
        status_reason=draw(st.none() | text),
        assigned_supporter_id=draw(st.none() | st.uuids()),
        escalated_from_id=draw(st.none() | st.uuids()),
        version=draw(versions),
        created_at=created,
        updated_at=created + timedelta(seconds=draw(st.integers(0, 10**8))),
        # As stored: the service ordered is always there (sent, or the direction's default).
        code=(draw(service_codes),),
        categories=tuple(draw(st.lists(st.builds(Coding, uri, code), max_size=2))),
        identifiers=tuple(
            draw(st.lists(st.builds(OrderIdentifier, st.none() | uri, text), max_size=2))
        ),
    )


@st.composite
def sessions(draw: st.DrawFn) -> PeerSession:
    start = draw(stamps)
    at = draw(stamps)
    return PeerSession(
        id=draw(st.uuids()),
        program_id=draw(st.uuids()),
        organization_id=draw(st.uuids()),
        format=draw(st.sampled_from(SessionFormat)),
        delivery_mode=draw(st.sampled_from(DeliveryMode)),
        starts_at=start,
        ends_at=start + timedelta(minutes=draw(st.integers(1, 720))),
        facilitator_ids=tuple(draw(st.lists(st.uuids(), max_size=2))),
        capacity=draw(st.none() | st.integers(1, 100)),
        topic=draw(st.none() | text),
        version=draw(versions),
        created_at=at,
        updated_at=at,
    )


@st.composite
def attendances(draw: st.DrawFn) -> tuple[Attendance, PeerSession]:
    session = draw(sessions())
    status = draw(st.sampled_from(AttendanceStatus))
    substance_use = draw(st.booleans())
    at = draw(stamps)
    return (
        Attendance(
            id=draw(st.uuids()),
            session_id=session.id,
            patient_id=draw(st.uuids()),
            organization_id=session.organization_id,
            referral_id=draw(st.none() | st.uuids()),
            status=status,
            billing=billing_for(session, status, substance_use),
            substance_use=substance_use,
            note=draw(st.none() | text),
            version=draw(versions),
            created_at=at,
            updated_at=at,
        ),
        session,
    )


@st.composite
def measures(draw: st.DrawFn) -> OutcomeMeasure:
    instrument = draw(st.sampled_from(Instrument))
    spec = INSTRUMENTS[instrument]
    answers = draw(
        st.lists(
            st.integers(spec.item_min, spec.item_max),
            min_size=len(spec.item_codes),
            max_size=len(spec.item_codes),
        )
    )
    at = draw(stamps)
    return OutcomeMeasure(
        id=draw(st.uuids()),
        patient_id=draw(st.uuids()),
        organization_id=draw(st.uuids()),
        referral_id=draw(st.none() | st.uuids()),
        instrument=instrument,
        administered_at=draw(stamps),
        item_answers=tuple(answers),
        version=draw(versions),
        created_at=at,
        updated_at=at,
    )


audit_events = st.builds(
    AuditEvent,
    st.uuids(),
    stamps,
    st.builds(
        AuditRecord,
        action=st.sampled_from(AuditAction),
        outcome=st.sampled_from(AuditOutcome),
        operation=st.sampled_from(["readReferral", "grantConsent", "readPatient"]),
        resource_type=st.sampled_from(["Referral", "Consent", "Patient", "Encounter"]),
        resource_id=st.none() | st.uuids(),
        patient_id=st.none() | st.uuids(),
        client_id=code,
        organization_id=st.uuids(),
        subject=code,
        purpose=st.none() | st.sampled_from(["TREAT", "CAREMGT"]),
        consent_ids=st.lists(st.uuids(), max_size=2).map(tuple),
        detail_code=st.none() | st.sampled_from(["FORBIDDEN", "REDACTED", "CONSENT_REVOKED"]),
        source_ip=st.none() | st.just("203.0.113.7"),
        trace_id=st.none() | code,
    ),
)


_delivery_codes = st.sampled_from(
    [
        Coding(HCPCS_SYSTEM, "H0038", "Self-help/peer services, per 15 minutes"),
        Coding(HCPCS_SYSTEM, "H0038"),
        Coding(SNOMED_SYSTEM, "711281004", "Support group"),
        Coding(SNOMED_SYSTEM, "461481000124109"),
    ]
)


@st.composite
def procedures(draw: st.DrawFn) -> Procedure:
    status = draw(st.sampled_from(ProcedureStatus))
    start = draw(st.none() | stamps)
    end = start + timedelta(minutes=draw(st.integers(0, 10_000))) if start else None
    minutes = (end - start).total_seconds() / 60 if start and end else 10_000 * 15
    units = 0 if status is ProcedureStatus.NOT_DONE else min(int(minutes // 15), 10_000)
    at = draw(stamps)
    return Procedure(
        id=draw(st.uuids()),
        referral_id=draw(st.uuids()),
        patient_id=draw(st.uuids()),
        performer_organization_id=draw(st.uuids()),
        supporter_id=draw(st.none() | st.uuids()),
        status=status,
        codes=tuple(draw(st.lists(_delivery_codes, min_size=1, max_size=2, unique=True))),
        categories=tuple(draw(st.lists(st.builds(Coding, uri, code), max_size=2, unique=True))),
        performed_start=start,
        performed_end=end,
        units=draw(st.none() | st.integers(0, units)),
        part2=draw(st.booleans()),
        version=draw(versions),
        created_at=at,
        updated_at=at,
    )


@st.composite
def consent_forms(draw: st.DrawFn) -> ConsentForm:
    inline = draw(st.booleans())
    created = draw(stamps)
    return ConsentForm(
        id=draw(st.uuids()),
        patient_id=draw(st.uuids()),
        organization_id=draw(st.uuids()),
        content_type=draw(st.sampled_from(sorted(CONTENT_TYPES))),
        title=draw(st.none() | text),
        url=None if inline else "https://clinic.example.org/forms/consent-signed.pdf",
        data=draw(st.binary(min_size=1, max_size=300)) if inline else None,
        version=draw(versions),
        created_at=created,
        updated_at=created + timedelta(seconds=draw(st.integers(0, 10**6))),
    )
