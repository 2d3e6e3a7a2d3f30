"""The benchmark network: a reproducible care network of any size, built once and cached.

Shape (for `--referrals R`): 20 clinics and 10 peer organizations (3 programs each), R/2
patients held by the clinics, two referrals per patient (clinic → two different peer
organizations), one consent per referral naming its performer, and each referral's status
history. The caller of every benchmark request is peer organization 0 ("Bench Peers 00"): its
inbox holds R/10 referrals.

Consent mix (by a hash of the referral number, so the same for every size and run):
  10 % revoked and 5 % expired → the referral is redacted (no patient, no reasons);
  5 % cover the referral but not demographics → the referral shows, its patient does not;
  2 % share substance-use data (42 CFR Part 2), half of them under a consent that names it;
  the rest cover demographics and referral, for treatment or care coordination.

Organizations, programs and one template patient, consent and referral are made through the
services (so every column is what the services write: verbatim documents, codes, identifiers);
the bulk is then copied from the templates with `generate_series` in SQL, a few seconds per
100k referrals instead of hours through the services. Ids are md5 hashes of (seed, kind,
number), timestamps count from a fixed instant, so a rebuild gives the same rows.

A built database is named by size, seed, generator version and the migration set
(`pb_bench_r<R>_s<seed>_<hash>`) and marked complete with a database comment; a rerun with the
same name only applies pending migrations (none, by construction of the name) and reuses it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from uuid import UUID

import asyncpg

from api.db.databases import create_database, url_for_database
from api.db.migrate import migrate
from api.db.pool import create_pool
from api.db.uow import PostgresUnitOfWork
from api.domain.consents import DataClass, Purpose
from api.domain.organizations import OrganizationKind
from api.domain.patients import PatientIdentifier
from api.domain.principal import Principal
from api.domain.programs import DeliveryMode, ProgramKind
from api.domain.scopes import parse_scopes
from api.services import consents, organizations, patients, programs, referrals
from api.settings import Settings

GENERATOR_VERSION = 1
CLINICS = 10 * 2
PEERS = 10
PROGRAMS_PER_PEER = 3
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.77"
CALLER_NAME = "Bench Peers 00"
_COMPLETE = "peerbridge benchmark dataset: complete"
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)  # referral 0 is created here; the rest over a year

_log = logging.getLogger("benchmarks.dataset")


@dataclass(frozen=True)
class Dataset:
    url: str  # the database
    referrals: int
    caller_organization_id: UUID  # peer organization 0: whose inbox the benchmark reads


def database_name(referrals: int, seed: int) -> str:
    """The cache key: size, seed, generator version and the exact migration set."""
    migrations = resources.files("api.db") / "migrations"
    digest = hashlib.sha256(str(GENERATOR_VERSION).encode())
    for entry in sorted(migrations.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            digest.update(entry.name.encode() + entry.read_bytes())
    return f"pb_bench_r{referrals}_s{seed}_{digest.hexdigest()[:10]}"


async def ensure(admin_url: str, referrals: int, seed: int = 1) -> Dataset:
    """The dataset of this size and seed: reused when built before, else built now."""
    name = database_name(referrals, seed)
    url = url_for_database(admin_url, name)
    admin = await asyncpg.connect(admin_url)
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            name,
        )
        if comment == _COMPLETE:
            _log.info("dataset %s: cached", name)
            return await describe(url, referrals)
        if comment is not None or await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", name
        ):
            # A build that stopped half-way: start again from nothing.
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await create_database(admin, name)
        started = time.monotonic()
        await migrate(url)
        await build(url, referrals, seed)
        await admin.execute(f"COMMENT ON DATABASE \"{name}\" IS '{_COMPLETE}'")
        _log.info("dataset %s: built in %.1f s", name, time.monotonic() - started)
    finally:
        await admin.close()
    return await describe(url, referrals)


async def describe(url: str, referrals: int) -> Dataset:
    connection = await asyncpg.connect(url)
    try:
        caller = await connection.fetchval(
            "SELECT id FROM organizations WHERE name = $1", CALLER_NAME
        )
    finally:
        await connection.close()
    return Dataset(url, referrals, caller)


def _principal(organization_id: UUID) -> Principal:
    return Principal(
        client_id="bench-generator",
        organization_id=organization_id,
        scopes=parse_scopes(["system/*.cruds"]),
        subject="bench-generator",
    )


async def build(url: str, referral_count: int, seed: int) -> None:
    """Fill a migrated, empty database (see the module docstring for the shape)."""
    pool = await create_pool(Settings(database_url=url, db_pool_min_size=1, db_pool_max_size=2))
    try:

        def uow() -> PostgresUnitOfWork:
            return PostgresUnitOfWork(pool)

        clinics = [
            await organizations.create_organization(
                uow(), name=f"Bench Clinic {n:02d}", kind=OrganizationKind.CLINIC
            )
            for n in range(CLINICS)
        ]
        peers = [
            await organizations.create_organization(
                uow(), name=f"Bench Peers {n:02d}", kind=OrganizationKind.PEER_ORGANIZATION
            )
            for n in range(PEERS + 1)  # the last one only receives the template referral
        ]
        program_ids: list[UUID] = []
        for peer in peers:
            for kind, name in (
                (ProgramKind.SUPPORT_GROUP, "Recovery Circle"),
                (ProgramKind.ONE_ON_ONE_MENTORING, "Peer Mentoring"),
                (ProgramKind.ONLINE_COMMUNITY, "Evening Online Group"),
            )[:PROGRAMS_PER_PEER]:
                program = await programs.upsert_program(
                    uow(),
                    _principal(peer.id),
                    programs.UpsertPeerProgram(
                        name=name, kind=kind, delivery_modes=(DeliveryMode.IN_PERSON,), capacity=12
                    ),
                )
                program_ids.append(program.id)
        template_peer = peers[-1]
        as_clinic = _principal(clinics[0].id)
        template_patient = await patients.register_patient(
            uow(),
            as_clinic,
            patients.RegisterPatient(
                identifiers=(PatientIdentifier(MRN_SYSTEM, "TEMPLATE"),),
                given_name="Template",
                family_name="Person",
            ),
        )
        template_consent = await consents.grant_consent(
            uow(),
            as_clinic,
            consents.GrantConsent(
                patient_id=template_patient.id,
                recipient_organization_id=template_peer.id,
                purposes=frozenset({Purpose.TREATMENT}),
                data_classes=frozenset({DataClass.DEMOGRAPHICS, DataClass.REFERRAL}),
                period_start=datetime.now(UTC) - timedelta(days=1),
            ),
        )
        template_referral = await referrals.create_referral(
            uow(),
            as_clinic,
            referrals.CreateReferral(
                patient_id=template_patient.id,
                performer_organization_id=template_peer.id,
                program_id=program_ids[-PROGRAMS_PER_PEER],
                reason_text="Peer support after discharge",
            ),
        )
    finally:
        await pool.close()
    # The bulk copy runs for minutes at 1M: its own connection, without the service's
    # statement and command timeouts.
    connection = await asyncpg.connect(url, command_timeout=None)
    try:
        await connection.execute("SET statement_timeout = 0")
        async with connection.transaction():
            await connection.execute(
                _ARGUMENTS_SQL,
                referral_count,
                str(seed),
                [c.id for c in clinics],
                [p.id for p in peers[:PEERS]],
                program_ids[: PEERS * PROGRAMS_PER_PEER],
                template_patient.id,
                template_consent.id,
                template_referral.referral.id,
                _EPOCH,
                MRN_SYSTEM,
            )
            await connection.execute(_CLONE_SQL)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


# The parameters, as a one-row table the (multi-statement, so parameterless) clone reads.
_ARGUMENTS_SQL = """
CREATE TEMPORARY TABLE bench_args ON COMMIT DROP AS
SELECT $1::integer AS referrals, $2::text AS seed, $3::uuid[] AS clinics, $4::uuid[] AS peers,
       $5::uuid[] AS programs, $6::uuid AS template_patient, $7::uuid AS template_consent,
       $8::uuid AS template_referral, $9::timestamptz AS epoch, $10::text AS mrn_system
"""

# Programs come 3 per peer, in peer order.
# Referral i: patient i/2 (held by clinic (i/2) % 20), performer peer i % 10, program
# (i/10) % 3 of that peer; h = a hash of i picks the consent variant, status and priority.
_CLONE_SQL = """
CREATE TEMPORARY TABLE bench_plan ON COMMIT DROP AS
SELECT i,
       i / 2 AS j,
       md5(a.seed || ':referral:' || i)::uuid AS referral_id,
       md5(a.seed || ':patient:' || (i / 2))::uuid AS patient_id,
       md5(a.seed || ':consent:' || i)::uuid AS consent_id,
       (a.clinics)[(i / 2) % 20 + 1] AS clinic_id,
       (a.peers)[i % 10 + 1] AS peer_id,
       (a.programs)[(i % 10) * 3 + (i / 10) % 3 + 1] AS program_id,
       abs(hashtext(a.seed || ':h:' || i)) % 1000 AS h,
       a.epoch + make_interval(secs => i * 31536000.0 / a.referrals) AS created
FROM bench_args a CROSS JOIN generate_series(0, a.referrals - 1) AS g(i);

INSERT INTO patients (id, managing_organization_id, given_name, family_name, birth_date, gender,
                      phone, email, preferred_language, version, created_at, updated_at, verbatim)
SELECT p.patient_id, p.clinic_id,
       (ARRAY['Ada','Ben','Carmen','Dev','Elif','Farah','Gus','Hana','Ivan','June','Kofi',
              'Lena','Mateo','Nia','Omar','Pia','Quinn','Rosa','Sami','Tomas'])
           [abs(hashtext(a.seed || ':given:' || p.j)) % 20 + 1],
       (ARRAY['Abara','Bianchi','Chen','Diallo','Evans','Fischer','Garcia','Haddad','Ito',
              'Jensen','Kowalski','Lopez','Moreau','Nguyen','Okafor','Patel','Quispe','Rossi',
              'Silva','Tanaka'])[abs(hashtext(a.seed || ':family:' || p.j)) % 20 + 1],
       date '1950-01-01' + abs(hashtext(a.seed || ':born:' || p.j)) % 20000,
       (ARRAY['female','male','other','unknown'])[p.j % 4 + 1],
       t.phone, t.email, t.preferred_language, 1, p.created, p.created, t.verbatim
FROM bench_plan p CROSS JOIN bench_args a
JOIN patients t ON t.id = a.template_patient
WHERE p.i % 2 = 0;

INSERT INTO patient_identifiers (patient_id, organization_id, ordinal, system, value)
SELECT patient_id, clinic_id, 0, a.mrn_system, 'MRN-' || j
FROM bench_plan CROSS JOIN bench_args a WHERE i % 2 = 0;

INSERT INTO consents (id, patient_id, recorded_by_organization_id, recipient_organization_id,
                      purposes, data_classes, period_start, period_end, revoked, revoked_at,
                      revocation_reason, source_reference, version, created_at, updated_at,
                      verbatim)
SELECT p.consent_id, p.patient_id, p.clinic_id, p.peer_id,
       CASE WHEN p.h % 2 = 0 THEN ARRAY['treatment'] ELSE ARRAY['care_coordination'] END,
       CASE WHEN p.h BETWEEN 150 AND 199 THEN ARRAY['referral']
            WHEN p.h % 50 = 20 AND p.h % 100 = 20 THEN ARRAY['demographics','referral',
                                                                   'substance_use']
            ELSE ARRAY['demographics','referral'] END,
       p.created - interval '1 day',
       CASE WHEN p.h BETWEEN 100 AND 149 THEN p.created + interval '30 days' END,
       p.h < 100,
       CASE WHEN p.h < 100 THEN p.created + interval '2 days' END,
       CASE WHEN p.h < 100 THEN t.revocation_reason END,
       t.source_reference,
       CASE WHEN p.h < 100 THEN 2 ELSE 1 END,
       p.created - interval '1 day',
       CASE WHEN p.h < 100 THEN p.created + interval '2 days' ELSE p.created - interval '1 day' END,
       t.verbatim
FROM bench_plan p CROSS JOIN bench_args a JOIN consents t ON t.id = a.template_consent;

CREATE TEMPORARY TABLE bench_status ON COMMIT DROP AS
SELECT p.*,
       CASE WHEN p.h % 10 < 4 THEN 'requested' WHEN p.h % 10 < 7 THEN 'accepted'
            WHEN p.h % 10 < 9 THEN 'in-progress' ELSE 'rejected' END AS status,
       CASE WHEN p.h % 10 < 4 THEN 1 WHEN p.h % 10 < 7 THEN 2
            WHEN p.h % 10 < 9 THEN 3 ELSE 2 END AS version
FROM bench_plan p;

INSERT INTO referrals (id, direction, requester_organization_id, performer_organization_id,
                       program_id, patient_id, priority, reason_codes, reason_text,
                       shared_data_classes, consent_id, status, status_reason,
                       assigned_supporter_id, escalated_from_id, version, created_at, updated_at,
                       verbatim, code, categories, identifiers, task_created_at)
SELECT s.referral_id, t.direction, s.clinic_id, s.peer_id, s.program_id, s.patient_id,
       CASE WHEN s.h % 10 = 3 THEN 'urgent' ELSE t.priority END,
       t.reason_codes, t.reason_text,
       CASE WHEN s.h % 50 = 20 THEN ARRAY['demographics','referral','substance_use']
            ELSE t.shared_data_classes END,
       s.consent_id, s.status,
       CASE WHEN s.status = 'rejected' THEN 'No capacity this month' END,
       NULL, NULL, s.version, s.created,
       s.created + make_interval(hours => s.version - 1),
       t.verbatim, t.code, t.categories, t.identifiers, s.created
FROM bench_status s CROSS JOIN bench_args a JOIN referrals t ON t.id = a.template_referral;

INSERT INTO referral_transitions (referral_id, version, from_status, to_status, transition,
                                  reason, organization_id, client_id, subject, at)
SELECT s.referral_id, v.version, v.from_status, v.to_status, v.transition,
       CASE WHEN v.to_status = 'rejected' THEN 'No capacity this month' END,
       CASE WHEN v.version = 1 THEN s.clinic_id ELSE s.peer_id END,
       'bench-generator', 'bench-generator',
       s.created + make_interval(hours => v.version - 1)
FROM bench_status s
CROSS JOIN LATERAL (VALUES
    (1, NULL, 'requested', NULL),
    (2, 'requested', CASE WHEN s.status = 'rejected' THEN 'rejected' ELSE 'accepted' END,
        CASE WHEN s.status = 'rejected' THEN 'reject' ELSE 'accept' END),
    (3, 'accepted', 'in-progress', 'start')
) AS v(version, from_status, to_status, transition)
WHERE v.version <= s.version;
"""
