"""A small care network built through the services, for integration and end-to-end tests.

Clinic → peer organization with a consented patient; a second peer organization that the
patient never consented to; supporters with a valid and an expired certification.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import asyncpg

from api.db.uow import PostgresUnitOfWork
from api.domain.consents import Consent, DataClass, Purpose
from api.domain.organizations import Organization, OrganizationKind
from api.domain.patients import Gender, Patient, PatientIdentifier
from api.domain.principal import Principal
from api.domain.programs import DeliveryMode, PeerProgram, ProgramKind
from api.domain.scopes import parse_scopes
from api.domain.supporters import (
    Certification,
    CertificationStatus,
    CertificationSubtype,
    PeerSupporter,
)
from api.services import consents, organizations, patients, programs, supporters

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"
ALL_SCOPES = parse_scopes(["system/*.cruds"])


def principal_for(organization: Organization, scopes: str = "system/*.cruds") -> Principal:
    return Principal(
        client_id=f"client-{organization.name}",
        organization_id=organization.id,
        scopes=parse_scopes(scopes.split()),
        subject=f"client-{organization.name}",
    )


def certification(expires_on: date | None) -> Certification:
    return Certification(
        type="Certified Peer Specialist",
        subtype=CertificationSubtype.MENTAL_HEALTH,
        issuing_body="Test Certification Board",
        jurisdiction="US-PA",
        number=f"CPS-{secrets.token_hex(3)}",
        status=CertificationStatus.ACTIVE,
        issued_on=date(2024, 1, 1),
        expires_on=expires_on,
        last_verified_on=None,
    )


@dataclass
class Network:
    pool: asyncpg.Pool
    clinic: Organization
    peer: Organization
    stranger: Organization  # a peer organization the patient never consented to
    program: PeerProgram
    supporter: PeerSupporter  # valid certification, caseload 2
    expired_supporter: PeerSupporter
    patient: Patient
    consent: Consent  # patient → peer: demographics, referral, sessions, outcomes

    def uow(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool)

    @property
    def as_clinic(self) -> Principal:
        return principal_for(self.clinic)

    @property
    def as_peer(self) -> Principal:
        return principal_for(self.peer)

    @property
    def as_stranger(self) -> Principal:
        return principal_for(self.stranger)


async def build_network(pool: asyncpg.Pool) -> Network:
    def uow() -> PostgresUnitOfWork:
        return PostgresUnitOfWork(pool)

    suffix = secrets.token_hex(3)
    clinic = await organizations.create_organization(
        uow(), name=f"Clinic {suffix}", kind=OrganizationKind.CLINIC
    )
    peer = await organizations.create_organization(
        uow(), name=f"Peers {suffix}", kind=OrganizationKind.PEER_ORGANIZATION
    )
    stranger = await organizations.create_organization(
        uow(), name=f"Strangers {suffix}", kind=OrganizationKind.PEER_ORGANIZATION
    )
    as_peer = principal_for(peer)
    program = await programs.upsert_program(
        uow(),
        as_peer,
        programs.UpsertPeerProgram(
            name="Recovery Circle",
            kind=ProgramKind.SUPPORT_GROUP,
            delivery_modes=(DeliveryMode.IN_PERSON,),
            capacity=12,
        ),
    )
    supporter = await supporters.upsert_supporter(
        uow(),
        as_peer,
        supporters.UpsertPeerSupporter(
            display_name="Sam Rivera",
            max_caseload=2,
            certifications=(certification(date.today() + timedelta(days=365)),),
        ),
    )
    expired = await supporters.upsert_supporter(
        uow(),
        as_peer,
        supporters.UpsertPeerSupporter(
            display_name="Lee Expired",
            max_caseload=10,
            certifications=(certification(date.today() - timedelta(days=1)),),
        ),
    )
    as_clinic = principal_for(clinic)
    patient = await patients.register_patient(
        uow(),
        as_clinic,
        patients.RegisterPatient(
            identifiers=(PatientIdentifier(MRN_SYSTEM, f"MRN-{suffix}"),),
            given_name="Ada",
            family_name="Testperson",
            birth_date=date(1990, 5, 17),
            gender=Gender.FEMALE,
        ),
    )
    consent = await consents.grant_consent(
        uow(),
        as_clinic,
        consents.GrantConsent(
            patient_id=patient.id,
            recipient_organization_id=peer.id,
            purposes=frozenset({Purpose.CARE_COORDINATION}),
            data_classes=frozenset(
                {DataClass.DEMOGRAPHICS, DataClass.REFERRAL, DataClass.SESSIONS, DataClass.OUTCOMES}
            ),
            period_start=datetime.now(UTC) - timedelta(days=1),
        ),
    )
    return Network(pool, clinic, peer, stranger, program, supporter, expired, patient, consent)


async def register_patient(network: Network, mrn: str | None = None) -> Patient:
    return await patients.register_patient(
        network.uow(),
        network.as_clinic,
        patients.RegisterPatient(
            identifiers=(PatientIdentifier(MRN_SYSTEM, mrn or f"MRN-{secrets.token_hex(4)}"),),
            given_name="Ben",
            family_name="Sampleton",
        ),
    )


async def consent_to(
    network: Network, patient_id: UUID, recipient: Organization, *classes: DataClass
) -> Consent:
    return await consents.grant_consent(
        network.uow(),
        network.as_clinic,
        consents.GrantConsent(
            patient_id=patient_id,
            recipient_organization_id=recipient.id,
            purposes=frozenset({Purpose.TREATMENT}),
            data_classes=frozenset(classes or (DataClass.DEMOGRAPHICS, DataClass.REFERRAL)),
        ),
    )
