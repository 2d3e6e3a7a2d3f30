"""`peerbridge demo`: load a realistic, clearly fictional, idempotent demo network.

Everything goes through the services, so the demo obeys the same consent, state-machine and
audit rules as real traffic (and exercises them).
"""

from __future__ import annotations

import argparse
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import asyncpg

from api.auth.demo import describe_demo_clients, register_demo_clients
from api.cli.common import load_settings, run_with_pool
from api.cli.demo_users import describe_demo_users, ensure_demo_users
from api.db.uow import PostgresUnitOfWork
from api.domain.consents import DataClass, Purpose
from api.domain.errors import SupporterUnavailable
from api.domain.locations import (
    Address,
    Concept,
    ContactPoint,
    LocationMode,
    LocationStatus,
    Position,
)
from api.domain.organizations import Organization, OrganizationKind
from api.domain.outcomes import Instrument
from api.domain.patients import Gender, PatientIdentifier
from api.domain.principal import Principal
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.domain.referrals import Coding, Priority, ReferralStatus, Transition
from api.domain.scopes import parse_scopes
from api.domain.sessions import AttendanceStatus, SessionFormat
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    LivedExperience,
    PeerSupporter,
    SupervisorKind,
)
from api.services import (
    consents,
    locations,
    organizations,
    outcomes,
    patients,
    programs,
    referrals,
    sessions,
    supporters,
)
from api.settings import Settings

SNOMED = "http://snomed.info/sct"
PEER_SUPPORT_REFERRAL = Coding(SNOMED, "461481000124109", "Referral to peer support")
MENTAL_HEALTH_REFERRAL = Coding(SNOMED, "390866009", "Referral to mental health team")
MRN_SYSTEMS = {
    "Riverside Community Health Clinic (demo)": "urn:oid:2.16.840.1.113883.3.7777.1",
    "Lakeview Family Medicine (demo)": "urn:oid:2.16.840.1.113883.3.7777.2",
}
PEER_ORGS = (
    "Harbor Peer Recovery Network (demo)",
    "Open Door Peer Alliance (demo)",
    "Kinship Youth & Family Peer Services (demo)",
)
PATIENT_COUNT = 50
REFERRAL_COUNT = 200
SEED = 20261125
_log = logging.getLogger("peerbridge.demo")

# Statuses the demo's referrals end in, and the moves that reach each from `requested`.
_PATHS: dict[ReferralStatus, tuple[Transition, ...]] = {
    ReferralStatus.REQUESTED: (),
    ReferralStatus.ACCEPTED: (Transition.ACCEPT,),
    ReferralStatus.REJECTED: (Transition.REJECT,),
    ReferralStatus.IN_PROGRESS: (Transition.ACCEPT, Transition.START),
    ReferralStatus.ON_HOLD: (Transition.ACCEPT, Transition.START, Transition.HOLD),
    ReferralStatus.COMPLETED: (Transition.ACCEPT, Transition.START, Transition.COMPLETE),
    ReferralStatus.FAILED: (Transition.ACCEPT, Transition.START, Transition.FAIL),
    ReferralStatus.CANCELLED: (Transition.CANCEL,),
}
_REASONS = {
    Transition.REJECT: "program at capacity",
    Transition.HOLD: "participant travelling",
    Transition.FAIL: "participant could not be reached",
    Transition.CANCEL: "participant chose another service",
}


def demo_principal(organization_id: UUID) -> Principal:
    """A backend principal acting for one demo organization with every scope."""
    return Principal("demo-loader", organization_id, parse_scopes(["system/*.cruds"]), "demo")


@dataclass
class DemoSummary:
    organizations: dict[str, Organization] = field(default_factory=dict)
    programs: int = 0
    locations: int = 0
    supporters: int = 0
    patients: int = 0
    consents: int = 0
    revoked_consents: int = 0
    referrals: int = 0
    sessions: int = 0
    outcome_measures: int = 0
    already_loaded: bool = False


async def load_demo(pool: asyncpg.Pool, settings: Settings) -> str:
    """Create the demo network unless it is already there (matched by organization names),
    register one OAuth client per demo organization, and say how to call the API as one."""
    summary = await _load(pool)
    clients = await register_demo_clients(
        pool, ((name, org.id) for name, org in summary.organizations.items()), settings.data_dir
    )
    accounts = await ensure_demo_users(
        pool, summary.organizations, demo_principal(next(iter(summary.organizations.values())).id)
    )
    text = "\n".join(
        (
            describe(summary),
            describe_demo_clients(clients, settings.base_url),
            describe_demo_users(accounts, settings.base_url),
        )
    )
    _log.info("%s", text)
    return text


async def _load(pool: asyncpg.Pool) -> DemoSummary:
    summary = DemoSummary()
    existing = {o.name: o for o in await organizations.list_organizations(PostgresUnitOfWork(pool))}
    if all(name in existing for name in (*MRN_SYSTEMS, *PEER_ORGS)):
        summary.organizations = {n: existing[n] for n in (*MRN_SYSTEMS, *PEER_ORGS)}
        summary.already_loaded = True
        return summary
    loader = _Loader(pool, random.Random(SEED), summary)
    await loader.organizations(existing)
    await loader.programs_and_supporters()
    await loader.patients_and_consents()
    await loader.referrals()
    await loader.sessions_and_outcomes()
    await loader.revoke_some_consents()
    return summary


class _Loader:
    def __init__(self, pool: asyncpg.Pool, rng: random.Random, summary: DemoSummary) -> None:
        self.pool = pool
        self.rng = rng
        self.summary = summary
        self.now = datetime.now(UTC)
        self.programs: dict[UUID, list[PeerProgram]] = {}
        self.supporters: dict[UUID, list[PeerSupporter]] = {}
        self.patients: list[tuple[UUID, UUID]] = []  # (patient id, clinic id)
        self.consented: dict[UUID, set[UUID]] = {}  # patient -> peer orgs with active consent
        self.part2_patients: set[UUID] = set()
        self.in_care: list[tuple[UUID, UUID, UUID]] = []  # (patient, peer org, referral)
        self.granted: list[tuple[UUID, UUID, UUID]] = []  # (patient, peer org, consent)

    def uow(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool)

    async def organizations(self, existing: dict[str, Organization]) -> None:
        for name in MRN_SYSTEMS:
            self.summary.organizations[name] = existing.get(name) or (
                await organizations.create_organization(
                    self.uow(),
                    name=name,
                    kind=OrganizationKind.CLINIC,
                    npi=f"19{self.rng.randrange(10**8):08d}",
                )
            )
        for name in PEER_ORGS:
            self.summary.organizations[name] = existing.get(name) or (
                await organizations.create_organization(
                    self.uow(), name=name, kind=OrganizationKind.PEER_ORGANIZATION
                )
            )

    @property
    def clinics(self) -> list[Organization]:
        return [self.summary.organizations[n] for n in MRN_SYSTEMS]

    @property
    def peer_orgs(self) -> list[Organization]:
        return [self.summary.organizations[n] for n in PEER_ORGS]

    async def programs_and_supporters(self) -> None:
        catalogue = [
            ("Tuesday Evening Recovery Circle", ProgramKind.SUPPORT_GROUP, True),
            ("One-to-One Recovery Mentoring", ProgramKind.ONE_ON_ONE_MENTORING, False),
            ("Night Owls Online Peer Community", ProgramKind.ONLINE_COMMUNITY, False),
            (
                "WRAP: Wellness Recovery Action Planning (8 weeks)",
                ProgramKind.STRUCTURED_PROGRAM,
                False,
            ),
        ]
        for index, org in enumerate(self.peer_orgs):
            principal = demo_principal(org.id)
            places = [
                (await locations.upsert_location(self.uow(), principal, command)).id
                for command in _locations_for(index)
            ]
            self.summary.locations += len(places)
            meets_at = {
                ProgramKind.SUPPORT_GROUP: (places[0],),
                ProgramKind.ONE_ON_ONE_MENTORING: (places[1],),
                ProgramKind.ONLINE_COMMUNITY: (),
                ProgramKind.STRUCTURED_PROGRAM: (places[1], places[0]),
            }
            self.programs[org.id] = []
            for offset in range(3):
                name, kind, sud = catalogue[(index + offset) % len(catalogue)]
                program = await programs.upsert_program(
                    self.uow(),
                    principal,
                    programs.UpsertPeerProgram(
                        name=name,
                        kind=kind,
                        description=f"{name} run by peers with lived experience.",
                        languages=("en", "es") if offset == 0 else ("en",),
                        delivery_modes=(DeliveryMode.VIRTUAL,)
                        if kind is ProgramKind.ONLINE_COMMUNITY
                        else (DeliveryMode.IN_PERSON, DeliveryMode.VIRTUAL),
                        eligibility="Adults 18+; no diagnosis required",
                        capacity=12 if kind is ProgramKind.SUPPORT_GROUP else None,
                        substance_use_focus=sud,
                        location_ids=meets_at[kind],
                    ),
                )
                self.programs[org.id].append(program)
                self.summary.programs += 1
            self.supporters[org.id] = [
                await supporters.upsert_supporter(self.uow(), principal, command)
                for command in self._supporters_for(index)
            ]
            self.summary.supporters += len(self.supporters[org.id])

    def _supporters_for(self, org_index: int) -> list[supporters.UpsertPeerSupporter]:
        names = [
            ("Alex Moreno", "Jordan Lee", "Casey Whitfield", "Riley Okafor"),
            ("Sam Patel", "Morgan Ruiz", "Taylor Nguyen", "Jamie Brooks"),
            ("Avery Chen", "Quinn Alvarez", "Drew Kowalski", "Rowan Adebayo"),
        ][org_index]
        today = self.now.date()
        commands = []
        for position, name in enumerate(names):
            expired = position == 3  # one supporter per organization is out of date
            cert = Certification(
                type="Certified Peer Specialist",
                subtype=(
                    CertificationSubtype.SUBSTANCE_USE
                    if position == 1
                    else CertificationSubtype.MENTAL_HEALTH
                ),
                issuing_body="Commonwealth Peer Certification Board (fictional)",
                jurisdiction="US-PA",
                number=f"CPS-DEMO-{org_index}{position:03d}",
                status=CertificationStatus.ACTIVE,
                issued_on=today - timedelta(days=900),
                expires_on=today - timedelta(days=30) if expired else today + timedelta(days=400),
                last_verified_on=today - timedelta(days=60),
            )
            commands.append(
                supporters.UpsertPeerSupporter(
                    display_name=f"{name} (demo)",
                    max_caseload=12,
                    lived_experience=(
                        LivedExperience.MENTAL_HEALTH,
                        (
                            LivedExperience.SUBSTANCE_USE,
                            LivedExperience.VETERAN,
                            LivedExperience.FAMILY,
                            LivedExperience.YOUTH,
                        )[position],
                    ),
                    languages=("en", "es") if position % 2 == 0 else ("en",),
                    certifications=(cert,),
                    supervisor_name="Dr. Pat Demo, LCSW",
                    supervisor_kind=SupervisorKind.CLINICAL,
                )
            )
        return commands

    async def patients_and_consents(self) -> None:
        given = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ira", "June"]
        family = ["Testperson", "Sampleton", "Demoson", "Fictional", "Placeholder"]
        for n in range(PATIENT_COUNT):
            clinic = self.clinics[n % 2]
            principal = demo_principal(clinic.id)
            patient = await patients.register_patient(
                self.uow(),
                principal,
                patients.RegisterPatient(
                    identifiers=(PatientIdentifier(MRN_SYSTEMS[clinic.name], f"DEMO{n:05d}"),),
                    given_name=given[n % len(given)],
                    family_name=f"{family[n % len(family)]}-{n:02d}",
                    birth_date=date(1960 + n % 45, 1 + n % 12, 1 + n % 28),
                    gender=(Gender.FEMALE, Gender.MALE, Gender.OTHER, Gender.UNKNOWN)[n % 4],
                    preferred_language="es" if n % 7 == 0 else "en",
                ),
            )
            self.patients.append((patient.id, clinic.id))
            self.summary.patients += 1
            self.consented[patient.id] = set()
            for peer in (self.peer_orgs[n % 3], self.peer_orgs[(n + 1) % 3]):
                classes = {
                    DataClass.DEMOGRAPHICS,
                    DataClass.REFERRAL,
                    DataClass.SESSIONS,
                    DataClass.OUTCOMES,
                }
                if n == 7:  # one participant shares Part 2 substance-use records
                    classes.add(DataClass.SUBSTANCE_USE)
                    self.part2_patients.add(patient.id)
                consent = await consents.grant_consent(
                    self.uow(),
                    principal,
                    consents.GrantConsent(
                        patient_id=patient.id,
                        recipient_organization_id=peer.id,
                        purposes=frozenset({Purpose.CARE_COORDINATION, Purpose.TREATMENT}),
                        data_classes=frozenset(classes),
                        period_start=self.now - timedelta(days=120),
                        period_end=self.now + timedelta(days=365),
                        source_reference=f"DocumentReference/demo-consent-form-{n}",
                    ),
                )
                self.summary.consents += 1
                self.consented[patient.id].add(peer.id)
                self.granted.append((patient.id, peer.id, consent.id))
            # Escalations from a peer organization go to the other clinic, which the patient
            # also consented to receive referral data.
            other_clinic = self.clinics[(n + 1) % 2]
            await consents.grant_consent(
                self.uow(),
                principal,
                consents.GrantConsent(
                    patient_id=patient.id,
                    recipient_organization_id=other_clinic.id,
                    purposes=frozenset({Purpose.TREATMENT}),
                    data_classes=frozenset({DataClass.DEMOGRAPHICS, DataClass.REFERRAL}),
                    period_start=self.now - timedelta(days=120),
                ),
            )
            self.summary.consents += 1

    async def referrals(self) -> None:
        statuses = list(_PATHS)
        for n in range(REFERRAL_COUNT):
            patient_id, clinic_id = self.patients[n % PATIENT_COUNT]
            peers = sorted(self.consented[patient_id])
            peer_id = peers[n % len(peers)]
            program = self.programs[peer_id][n % len(self.programs[peer_id])]
            part2 = patient_id in self.part2_patients
            classes = {DataClass.DEMOGRAPHICS, DataClass.REFERRAL}
            if part2:
                classes.add(DataClass.SUBSTANCE_USE)
            view = await referrals.create_referral(
                self.uow(),
                demo_principal(clinic_id),
                referrals.CreateReferral(
                    patient_id=patient_id,
                    performer_organization_id=peer_id,
                    program_id=program.id,
                    priority=(
                        Priority.ROUTINE,
                        Priority.ROUTINE,
                        Priority.URGENT,
                        Priority.ASAP,
                        Priority.STAT,
                    )[n % 5],
                    reason_codes=(PEER_SUPPORT_REFERRAL,),
                    reason_text="Would benefit from peer support alongside therapy (demo text).",
                    shared_data_classes=frozenset(classes),
                ),
                idempotency_key=f"demo-referral-{n}",
            )
            self.summary.referrals += 1
            target = statuses[n % len(statuses)]
            referral_id = view.referral.id
            for move in _PATHS[target]:
                actor = clinic_id if move is Transition.CANCEL else peer_id
                await referrals.transition_referral(
                    self.uow(), demo_principal(actor), referral_id, move, reason=_REASONS.get(move)
                )
                if move is Transition.ACCEPT:
                    await self._assign(peer_id, referral_id, n)
            if target in (ReferralStatus.IN_PROGRESS, ReferralStatus.COMPLETED):
                self.in_care.append((patient_id, peer_id, referral_id))
            if n % 16 == 3 and target is ReferralStatus.IN_PROGRESS:
                await self._escalate(peer_id, referral_id, clinic_id, accept=n % 32 == 3)

    async def _assign(self, peer_id: UUID, referral_id: UUID, n: int) -> None:
        """Round-robin over supporters who can take it; the expired one is never chosen."""
        today = self.now.date()
        valid = [s for s in self.supporters[peer_id] if s.has_valid_certification(today)]
        for offset in range(len(valid)):
            supporter = valid[(n + offset) % len(valid)]
            try:
                await referrals.assign_supporter(
                    self.uow(), demo_principal(peer_id), referral_id, supporter.id
                )
                return
            except SupporterUnavailable:
                continue  # full caseload: the referral waits unassigned, as in real life

    async def _escalate(
        self, peer_id: UUID, referral_id: UUID, clinic_id: UUID, *, accept: bool
    ) -> None:
        other_clinic = next(c for c in self.clinics if c.id != clinic_id)
        view = await referrals.escalate_referral(
            self.uow(),
            demo_principal(peer_id),
            referrals.EscalateReferral(
                referral_id=referral_id,
                clinic_organization_id=other_clinic.id,
                priority=Priority.URGENT,
                reason_codes=(MENTAL_HEALTH_REFERRAL,),
                reason_text="Peer supporter sees worsening mood; asks for clinical assessment.",
            ),
        )
        self.summary.referrals += 1
        if accept:
            await referrals.transition_referral(
                self.uow(), demo_principal(other_clinic.id), view.referral.id, Transition.ACCEPT
            )

    async def revoke_some_consents(self) -> None:
        """Every tenth participant withdraws one consent after referring: the performer keeps
        only redacted stubs of those referrals."""
        for n, (patient_id, _peer, consent_id) in enumerate(self.granted):
            if n % 20 == 1:
                clinic_id = next(c for p, c in self.patients if p == patient_id)
                await consents.revoke_consent(
                    self.uow(),
                    demo_principal(clinic_id),
                    consent_id,
                    reason="participant withdrew consent (demo)",
                )
                self.summary.revoked_consents += 1

    async def sessions_and_outcomes(self) -> None:
        for patient_id, peer_id, referral_id in self.in_care:
            principal = demo_principal(peer_id)
            program = self.programs[peer_id][0]
            facilitator = self.supporters[peer_id][0]
            improving = self.rng.random() < 0.65
            for week in range(3):
                starts = self.now - timedelta(days=7 * (3 - week), hours=2)
                session = await sessions.record_session(
                    self.uow(),
                    principal,
                    sessions.RecordSession(
                        program_id=program.id,
                        format=SessionFormat.GROUP
                        if program.kind is ProgramKind.SUPPORT_GROUP
                        else SessionFormat.ONE_ON_ONE,
                        delivery_mode=program.delivery_modes[0],
                        starts_at=starts,
                        ends_at=starts + timedelta(minutes=60 + 15 * (week % 2)),
                        facilitator_ids=(facilitator.id,),
                        topic="Coping skills and connection",
                    ),
                )
                self.summary.sessions += 1
                status = (
                    AttendanceStatus.NO_SHOW
                    if self.rng.random() < 0.15
                    else (AttendanceStatus.ATTENDED)
                )
                await sessions.record_attendance(
                    self.uow(),
                    principal,
                    sessions.RecordAttendance(
                        session_id=session.id,
                        patient_id=patient_id,
                        status=status,
                        referral_id=referral_id,
                    ),
                )
                for instrument, items in ((Instrument.PHQ9, 9), (Instrument.GAD7, 7)):
                    level = (3 - week) if improving else 2
                    answers = tuple(
                        max(0, min(3, level - self.rng.randrange(2))) for _ in range(items)
                    )
                    if instrument is Instrument.PHQ9 and not improving:
                        answers = (*answers[:8], 0 if week < 2 else 1)  # a late safety signal
                    await outcomes.record_outcome_measure(
                        self.uow(),
                        principal,
                        outcomes.RecordOutcomeMeasure(
                            patient_id=patient_id,
                            instrument=instrument,
                            item_answers=answers,
                            administered_at=starts + timedelta(minutes=5),
                            referral_id=referral_id,
                        ),
                    )
                    self.summary.outcome_measures += 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="load the demo network (idempotent)",
        description="Load a fictional demo network: 2 clinics, 3 peer organizations, their "
        "programs and supporters, 50 patients with consents, ~200 referrals in every status, "
        "sessions, attendance and outcome measures. Running it again changes nothing.",
    )
    parser.set_defaults(handler=_demo)


def _locations_for(org_index: int) -> list[locations.UpsertLocation]:
    """Two fictional places where an organization's programs meet."""
    town, street, postal = (
        ("Harborview", "Wharf St", "19001"),
        ("Millbrook", "Elm Ave", "19002"),
        ("Cedar Falls", "Oak Rd", "19003"),
    )[org_index]
    return [
        locations.UpsertLocation(
            name=f"{town} Public Library, Community Room (demo)",
            status=LocationStatus.ACTIVE,
            mode=LocationMode.INSTANCE,
            physical_type=Concept(
                (Coding(_PHYSICAL_TYPE, "ro", "Room"),),
            ),
            address=Address(
                use="work",
                lines=(f"{10 + org_index} {street}",),
                city=town,
                state="PA",
                postal_code=postal,
                country="US",
            ),
            telecom=(ContactPoint(system="phone", value=f"+1 555 01{org_index}0"),),
            position=Position(-75.1 - org_index / 10, 40.0 + org_index / 10),
        ),
        locations.UpsertLocation(
            name=f"{town} Peer Drop-in Center (demo)",
            description="Walk in weekdays 10:00-16:00; ask at the front desk",
            status=LocationStatus.ACTIVE,
            mode=LocationMode.INSTANCE,
            physical_type=Concept((Coding(_PHYSICAL_TYPE, "bu", "Building"),)),
            address=Address(
                use="work",
                lines=(f"{200 + org_index} Main St",),
                city=town,
                state="PA",
                postal_code=postal,
                country="US",
            ),
            telecom=(ContactPoint(system="phone", value=f"+1 555 02{org_index}0", use="work"),),
        ),
    ]


_PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def describe(summary: DemoSummary) -> str:
    lines = [
        "demo network already loaded"
        if summary.already_loaded
        else (
            f"demo network loaded: {summary.programs} programs at {summary.locations} locations, "
            f"{summary.supporters} supporters, "
            f"{summary.patients} patients, {summary.consents} consents "
            f"({summary.revoked_consents} revoked), {summary.referrals} "
            f"referrals, {summary.sessions} sessions, {summary.outcome_measures} outcome measures"
        )
    ]
    lines += [f"  {o.kind.value:<18} {o.id}  {name}" for name, o in summary.organizations.items()]
    return "\n".join(lines)


def _demo(args: argparse.Namespace) -> int:
    settings = load_settings()

    async def load(pool: asyncpg.Pool) -> str:
        return await load_demo(pool, settings)

    print(run_with_pool(load))
    return 0
