"""The official Gravity SDOH Clinical Care and BSeR examples (tests/fixtures/ig), POSTed as a
clinic or peer organization would, references re-pointed to this server: read back unchanged,
or refused naming the element for a reason an integrator can act on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_support import Fhir
from fidelity_support import assert_read_back, expressions
from network import Network

from api.domain.referrals import Transition
from api.services import referrals
from api.services.referrals import CreateReferral

IG = Path(__file__).parents[1] / "fixtures" / "ig"
CONSENT_REFS = ("patient", "organization")
PROCEDURE_REFS = ("basedOn", "subject")


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


def example(path: str, **references: str) -> dict[str, Any]:
    """The example without its id, each reference in `references` re-pointed."""

    def repoint(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: repoint(v) for k, v in value.items()}
            target = out.get("reference")
            if isinstance(target, str) and target in references:
                out["reference"] = references[target]
            return out
        if isinstance(value, list):
            return [repoint(v) for v in value]
        return value

    resource: dict[str, Any] = repoint(json.loads((IG / path).read_text()))
    del resource["id"]
    return resource


def recipient(network: Network) -> dict[str, Any]:
    """What PeerBridge's consents name: who receives, for what, which data."""
    return {
        "type": "permit",
        "actor": [
            {
                "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]},  # noqa: E501
                "reference": {"reference": f"Organization/{network.peer.id}"},
            }
        ],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],  # noqa: E501
        "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Patient"}],
    }


async def test_the_gravity_consent_with_its_signed_pdf_reads_back_unchanged(
    network: Network, clinic: Fhir
) -> None:
    sent = example(
        "sdoh-clinicalcare/SDOHCC-ConsentInformationDisclosureExample.json",
        **{
            "Patient/pat-53234": f"Patient/{network.patient.id}",
            "Organization/SDOHCC-OrganizationPayerExample": f"Organization/{network.clinic.id}",
        },
    )
    # The example records a disclosure consent without saying to whom: PeerBridge shares with
    # a named recipient only, and says so.
    refused = await clinic.request("POST", "Consent", sent)
    assert refused.status_code == 422, refused.text
    assert expressions(refused.json()) == ["Consent.provision"]
    assert "recipient" in refused.json()["issue"][0]["details"]["text"]

    sent["provision"] = recipient(network)
    created = await clinic.ok("POST", "Consent", sent)
    read = await clinic.ok("GET", f"Consent/{created['id']}")
    assert_read_back(sent, created, read, references=CONSENT_REFS)
    assert read["sourceAttachment"]["data"].startswith("JVBERi0xLjUK")  # the PDF, as sent


@pytest.mark.parametrize("who", ["eve-everywoman", "baby-everybaby"])
async def test_the_bser_consents_keep_their_opt_in_policy_when_they_name_a_recipient(
    network: Network, clinic: Fhir, who: str
) -> None:
    sent = example(
        f"bser/consent-bser-patientconsent-{who}.json",
        **{
            f"Patient/patient-us-core-patient-{who}": f"Patient/{network.patient.id}",
            "Organization/organization-us-core-organization-saint-luke": (
                f"Organization/{network.peer.id}"
            ),
        },
    )
    # Its only actor is a custodian (CST), with no purpose or data class: nobody to share with.
    refused = await clinic.request("POST", "Consent", sent)
    assert refused.status_code == 422, refused.text
    assert expressions(refused.json()) == ["Consent.provision.actor"]

    sent["provision"] = {**recipient(network), "action": sent["provision"]["action"]}
    created = await clinic.ok("POST", "Consent", sent)
    read = await clinic.ok("GET", f"Consent/{created['id']}")
    assert_read_back(sent, created, read, references=CONSENT_REFS, derived=("organization",))
    assert read["policyRule"]["coding"][0]["code"] == "OPTIN"
    assert read["category"][0]["coding"][0]["code"] == "INFA"


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


@pytest.mark.parametrize(
    ("name", "referral"),
    [
        ("FoodPantryApplicationAssistance", "ActiveFoodPantryApplicationAssist"),
        ("SummerFoodProgramApplicationAssistance", "SubreferralSummerFoodProgram"),
    ],
)
async def test_the_gravity_procedures_against_a_referral_read_back_unchanged(
    network: Network, peer: Fhir, clinic: Fhir, name: str, referral: str
) -> None:
    referral_id = await _worked_referral(network)
    sent = example(
        f"sdoh-clinicalcare/SDOHCC-Procedure{name}Example.json",
        **{
            "Patient/pat-53234": f"Patient/{network.patient.id}",
            f"ServiceRequest/SDOHCC-ServiceRequest{referral}Example": (
                f"ServiceRequest/{referral_id}"
            ),
        },
    )
    created = await peer.ok("POST", "Procedure", sent)
    read = await clinic.ok("GET", f"Procedure/{created['id']}")
    derived = ("performer", "extension")  # who recorded it; units billed (none attended)
    assert_read_back(sent, created, read, references=PROCEDURE_REFS, derived=derived)


async def test_procedures_outside_a_referral_are_refused_with_the_reason(
    network: Network, peer: Fhir
) -> None:
    food = example(
        "sdoh-clinicalcare/SDOHCC-ProcedureProvisionOfFoodExample.json",
        **{"Patient/pat-53234": f"Patient/{network.patient.id}"},
    )
    nicotine = example(
        "bser/procedure-us-core-procedure-nicotine-replacement-eve-everywoman.json",
        **{"Patient/patient-us-core-patient-eve-everywoman": f"Patient/{network.patient.id}"},
    )
    for sent in (food, nicotine):
        refused = await peer.request("POST", "Procedure", sent)
        assert refused.status_code == 422, refused.text
        assert expressions(refused.json()) == ["Procedure.basedOn"]
        assert "referral" in refused.json()["issue"][0]["details"]["text"]
    # Against a referral, a planned therapy is not a delivery yet.
    nicotine["basedOn"] = [{"reference": f"ServiceRequest/{await _worked_referral(network)}"}]
    refused = await peer.request("POST", "Procedure", nicotine)
    assert refused.status_code == 422, refused.text
    assert expressions(refused.json()) == ["Procedure.status"]


async def test_the_hunger_vital_sign_is_refused_as_an_instrument_peerbridge_does_not_score(
    network: Network, peer: Fhir
) -> None:
    sent = example(
        "sdoh-clinicalcare/SDOHCC-QuestionnaireResponseHungerVitalSignExample.json",
        **{"Patient/pat-53234": f"Patient/{network.patient.id}"},
    )
    refused = await peer.request("POST", "QuestionnaireResponse", sent)
    assert refused.status_code == 422, refused.text
    assert expressions(refused.json()) == ["QuestionnaireResponse.questionnaire"]
