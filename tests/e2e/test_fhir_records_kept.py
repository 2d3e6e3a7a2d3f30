"""Consent, DocumentReference, Procedure and QuestionnaireResponse keep what a clinic sends:
read back (FHIR read, search, GraphQL `fhir`) as sent, or refused naming the element."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_flows import SIGNED_PDF, consent_form
from fhir_support import Fhir, entries
from fidelity_support import assert_read_back, expressions
from graphql_support import GraphQL
from network import Network
from records_samples import ACT_CODE, LOINC, PDF, coding, consent, delivery

from api.domain.referrals import Transition
from api.services import consents, referrals
from api.services.referrals import CreateReferral

CONSENT_REFS = ("patient", "organization", "sourceReference")


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def test_a_consent_with_standard_codes_and_an_inline_pdf_reads_back_as_sent(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, clinic: Fhir, peer: Fhir
) -> None:
    sent = consent(network)
    created = await clinic.ok("POST", "Consent", sent)
    read = await clinic.ok("GET", f"Consent/{created['id']}")
    as_recipient = await peer.ok("GET", f"Consent/{created['id']}")
    searched = entries(await clinic.ok("GET", f"Consent?patient=Patient/{network.patient.id}"))
    gql = await GraphQL.as_organization(client, pool, network.clinic)
    listed = (
        await gql.data(
            "query($p: ID!) { consents(patientId: $p) { id dataClasses fhir } }",
            p=str(network.patient.id),
        )
    )["consents"]
    (mine,) = [c for c in listed if c["id"] == created["id"]]
    (found,) = [r for r in searched if r["id"] == created["id"]]
    reads = (created, read, as_recipient, found, mine["fhir"])
    assert_read_back(sent, *reads, references=CONSENT_REFS)
    # Read for the rules through the one table: Patient → demographics, PSY → the care record,
    # the nested 42CFRPart2 permit → substance use (named explicitly, as Part 2 requires).
    assert mine["dataClasses"] == [
        "DEMOGRAPHICS", "OUTCOMES", "REFERRAL", "SESSIONS", "SUBSTANCE_USE"
    ]  # fmt: skip


async def test_revoking_a_consent_changes_its_status_and_keeps_the_rest(
    network: Network, clinic: Fhir
) -> None:
    sent = consent(network)
    created = await clinic.ok("POST", "Consent", sent)
    changed = await clinic.request(
        "PUT",
        f"Consent/{created['id']}",
        {**created, "status": "inactive", "category": [{"coding": [coding(ACT_CODE, "INFA")]}]},
    )
    assert changed.status_code == 422, changed.text
    assert expressions(changed.json()) == ["Consent.category"]
    revocation = {**created, "status": "inactive"}
    revoked = await clinic.ok(
        "PUT", f"Consent/{created['id']}", revocation, **{"if-match": 'W/"1"'}
    )
    read = await clinic.ok("GET", f"Consent/{created['id']}")
    assert revoked["status"] == read["status"] == "inactive"
    assert_read_back({**sent, "status": "inactive"}, revoked, read, references=CONSENT_REFS)


def _provision(network: Network, **elements: Any) -> dict[str, Any]:
    return {**consent(network)["provision"], **elements}


async def test_a_consent_the_rules_cannot_honour_is_refused_naming_the_element(
    network: Network, clinic: Fhir
) -> None:
    hiv = [coding(ACT_CODE, "HIV")]
    cases = {
        "Consent.provision.class[0]": consent(
            network, provision=_provision(network, **{"class": [coding(LOINC, "11488-4")]})
        ),
        "Consent.provision.securityLabel[0]": consent(
            network, provision=_provision(network, securityLabel=hiv)
        ),
        "Consent.provision.provision[0].type": consent(
            network, provision=_provision(network, provision=[{"type": "deny"}])
        ),
        "Consent.provision.provision[0].purpose": consent(
            network,
            provision=_provision(
                network, provision=[{"type": "permit", "purpose": [coding(ACT_CODE, "HMARKT")]}]
            ),
        ),
        "Consent.provision.code": consent(
            network, provision=_provision(network, code=[{"coding": [coding(LOINC, "1-8")]}])
        ),
        "Consent.provision.dataPeriod": consent(
            network, provision=_provision(network, dataPeriod={"start": "2026-01-01"})
        ),
        "Consent.provision.action": consent(
            network,
            provision=_provision(
                network,
                action=[{"coding": [coding(
                    "http://terminology.hl7.org/CodeSystem/consentaction", "collect")]}],
            ),
        ),
        "Consent.provision.purpose[0]": consent(
            network, provision=_provision(network, purpose=[coding(ACT_CODE, "ETREAT")])
        ),
        "Consent.provision.type": consent(network, provision=_provision(network, type="deny")),
        "Consent.provision": {
            k: v for k, v in consent(network).items() if k != "provision"
        },
        "Consent.organization[0]": consent(
            network, organization=[{"reference": f"Organization/{network.peer.id}"}]
        ),
        "Consent.modifierExtension[0]": consent(
            network, modifierExtension=[{"url": "http://example.org/only-on-tuesdays",
                                         "valueBoolean": True}]
        ),
    }  # fmt: skip
    for expression, body in cases.items():
        response = await clinic.request("POST", "Consent", body)
        assert response.status_code == 422, (expression, response.text)
        assert expressions(response.json()) == [expression], response.text
    not_base64 = consent(network, sourceAttachment={"contentType": "application/pdf",
                                                    "data": "not base64!"})  # fmt: skip
    response = await clinic.request("POST", "Consent", not_base64)
    assert response.status_code in (400, 422), response.text
    assert expressions(response.json()) == ["Consent.sourceAttachment.data"]
    assert "entry" not in await clinic.ok(
        "GET", f"Consent?patient=Patient/{network.patient.id}&status=active&_id={network.peer.id}"
    )


async def test_a_consent_form_keeps_everything_the_clinic_sent(
    network: Network, clinic: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    sent = consent_form(patient, inline=True)
    sent["content"][0]["attachment"].update(
        {"language": "en-US", "creation": "2026-05-01T09:30:00-04:00", "title": " Signed form "}
    )
    sent["content"][0]["format"] = coding(
        "urn:oid:1.3.6.1.4.1.19376.1.2.3", "urn:ihe:iti:xds:2017:mimeTypeSufficient"
    )
    sent.update(
        {
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:7d3c1c1e"}],
            "docStatus": "preliminary",
            "description": "Release of information, signed at intake",
            "date": "2026-05-01T09:31:00-04:00",
            "author": [{"reference": f"Patient/{network.patient.id}", "display": "the patient"}],
            "securityLabel": [{"coding": [coding(ACT_CODE, "PSY")]}],
            "context": {"period": {"start": "2026-05-01"}, "facilityType": {"text": "clinic"}},
        }
    )
    created = await clinic.ok("POST", "DocumentReference", sent)
    read = await clinic.ok("GET", f"DocumentReference/{created['id']}")
    (searched,) = entries(await clinic.ok("GET", f"DocumentReference?patient={patient}"))
    for resource in (created, read, searched):
        attachment = resource["content"][0]["attachment"]
        assert base64.b64decode(attachment.pop("data")) == SIGNED_PDF
        assert attachment.pop("size") == len(SIGNED_PDF) and attachment.pop("hash")
    data_sent = sent["content"][0]["attachment"].pop("data")
    assert data_sent == PDF
    assert_read_back(sent, created, read, searched, references=("subject",), derived=("custodian",))


async def _worked_referral(network: Network) -> str:
    view = await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    for move in (Transition.ACCEPT, Transition.START):
        view = await referrals.transition_referral(
            network.uow(), network.as_peer, view.referral.id, move
        )
    return str(view.referral.id)


async def test_a_procedure_keeps_what_the_performer_sent_until_consent_is_revoked(
    network: Network, peer: Fhir, clinic: Fhir
) -> None:
    referral_id = await _worked_referral(network)
    at_a_moment = delivery(network, referral_id)
    over_a_period = delivery(
        network,
        referral_id,
        performedPeriod={"start": "2026-10-06T10:00:00Z", "end": "2026-10-06T11:00:00Z"},
    )
    del over_a_period["performedDateTime"]
    refs = ("basedOn", "subject", "performer")
    for sent in (at_a_moment, over_a_period):
        created = await peer.ok("POST", "Procedure", sent)
        read = await clinic.ok("GET", f"Procedure/{created['id']}")
        derived = ("performer", "extension")
        assert_read_back(sent, created, read, references=refs, derived=derived)
    by_category = await peer.ok(
        "GET", f"Procedure?based-on=ServiceRequest/{referral_id}&category=mental-health"
    )
    found = entries(by_category)
    assert len(found) == 2
    assert_read_back(over_a_period, found[0], references=refs, derived=("performer",))

    await consents.revoke_consent(network.uow(), network.as_clinic, network.consent.id)
    stub = await peer.ok("GET", f"Procedure/{created['id']}")
    task = await peer.ok("GET", f"Task?_id={referral_id}&_include=Task:output")
    listed = entries(await peer.ok("GET", f"Procedure?based-on=ServiceRequest/{referral_id}"))
    for hidden in (stub, *entries(task, "include"), *listed):
        for kept in ("note", "reasonCode", "location", "outcome", "report", "code"):
            assert kept not in hidden, kept
    assert "library" not in str(peer.seen[-3:])
    assert (await clinic.ok("GET", f"Procedure/{created['id']}"))["note"] == over_a_period["note"]


async def test_a_transaction_keeps_the_signed_form_and_the_consent_citing_it(
    network: Network, clinic: Fhir
) -> None:
    patient = f"Patient/{network.patient.id}"
    form = {**consent_form(patient, inline=True), "description": "signed at intake"}
    cites = consent(network)
    del cites["sourceAttachment"]
    urn = "urn:uuid:0b6f3c52-8d0e-4f7e-9f0a-3c1d2e4f5a6b"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": urn, "resource": form,
             "request": {"method": "POST", "url": "DocumentReference"}},
            {"resource": {**cites, "sourceReference": {"reference": urn}},
             "request": {"method": "POST", "url": "Consent"}},
        ],
    }  # fmt: skip
    done = await clinic.ok("POST", "", bundle)
    made_form, made_consent = (e["resource"] for e in done["entry"])
    read_form = await clinic.ok("GET", f"DocumentReference/{made_form['id']}")
    read_consent = await clinic.ok("GET", f"Consent/{made_consent['id']}")
    assert read_consent["sourceReference"] == {"reference": f"DocumentReference/{made_form['id']}"}
    re_pointed = ("sourceReference",)
    assert_read_back(cites, made_consent, read_consent, references=CONSENT_REFS, derived=re_pointed)
    assert read_form["description"] == "signed at intake"
    assert read_form["content"][0]["attachment"]["data"] == PDF


async def test_a_consent_worded_differently_is_recorded_as_its_own_not_merged(
    network: Network, clinic: Fhir
) -> None:
    first = await clinic.ok("POST", "Consent", consent(network))
    again = await clinic.ok("POST", "Consent", consent(network))
    assert again["id"] == first["id"]  # the same document: the consent already in force
    reworded = consent(network, category=[{"coding": [coding(ACT_CODE, "INFA")]}])
    second = await clinic.ok("POST", "Consent", reworded)
    assert second["id"] != first["id"]
    assert_read_back(reworded, second, references=CONSENT_REFS)
    assert_read_back(consent(network), await clinic.ok("GET", f"Consent/{first['id']}"),
                     references=CONSENT_REFS)  # fmt: skip
