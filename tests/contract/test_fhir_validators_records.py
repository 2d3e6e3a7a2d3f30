"""What PeerBridge returns for Consents, consent forms, Procedures and QuestionnaireResponses
sent with the elements clinics keep (standard codes, an inline PDF, performedDateTime, LOINC
questionnaires), and for the official IG examples it accepts, passes both R4 validators."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fhir_flows import consent_form  # noqa: E402
from fhir_support import Fhir, entries  # noqa: E402
from fhir_validator import expand, node_available, validate  # noqa: E402
from network import Network  # noqa: E402
from records_samples import coded, consent, delivery, response, scored  # noqa: E402

from api.domain.outcomes import Instrument  # noqa: E402
from api.domain.referrals import Transition  # noqa: E402
from api.services import referrals  # noqa: E402
from api.services.referrals import CreateReferral  # noqa: E402

pytestmark = [
    pytest.mark.contract,
    pytest.mark.skipif(not node_available(), reason="needs Node and the locked npm packages"),
]
IG = Path(__file__).parents[1] / "fixtures" / "ig"


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


def _gravity_procedure(network: Network, referral_id: str) -> dict[str, Any]:
    path = IG / "sdoh-clinicalcare" / "SDOHCC-ProcedureFoodPantryApplicationAssistanceExample.json"
    text = path.read_text()
    resource: dict[str, Any] = json.loads(
        text.replace("Patient/pat-53234", f"Patient/{network.patient.id}").replace(
            "ServiceRequest/SDOHCC-ServiceRequestActiveFoodPantryApplicationAssistExample",
            f"ServiceRequest/{referral_id}",
        )
    )
    del resource["id"]
    return resource


async def test_kept_records_pass_both_validators(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    seen: list[dict[str, Any]] = []
    clinic = await Fhir.as_organization(client, pool, network.clinic, seen=seen)
    peer = await Fhir.as_organization(client, pool, network.peer, seen=seen)
    patient = f"Patient/{network.patient.id}"
    made = await clinic.ok("POST", "Consent", consent(network))
    gravity = json.loads((IG / "sdoh-clinicalcare" / "SDOHCC-ConsentInformationDisclosureExample.json").read_text())  # noqa: E501
    del gravity["id"]
    gravity["patient"] = {"reference": patient}
    gravity["organization"] = [{"reference": f"Organization/{network.clinic.id}"}]
    await clinic.ok("POST", "Consent", {**gravity, "provision": consent(network)["provision"]})
    await clinic.ok("PUT", f"Consent/{made['id']}", {**made, "status": "inactive"})
    form = consent_form(patient, inline=True)
    form.update({"description": "signed at intake", "docStatus": "preliminary"})
    await clinic.ok("POST", "DocumentReference", form)
    referral_id = await _worked_referral(network)
    await peer.ok("POST", "Procedure", delivery(network, referral_id))
    await peer.ok("POST", "Procedure", _gravity_procedure(network, referral_id))
    phq9 = [1, 0, 2, 3, 0, 1, 1, 0, 2]
    total = {"linkId": "/44261-6", "answer": [{"valueInteger": sum(phq9)}]}
    phq9_items = [*coded(Instrument.PHQ9, phq9, slash=True), total]
    for body in (
        response(network, "http://loinc.org/q/44249-1", phq9_items),
        response(network, "http://loinc.org/q/69737-5", scored(Instrument.GAD7, [1] * 7)),
    ):
        await peer.ok("POST", "QuestionnaireResponse", body)
    for reader, path in (
        (clinic, f"Consent?patient={patient}"),
        (clinic, f"DocumentReference?patient={patient}"),
        (peer, f"Procedure?based-on=ServiceRequest/{referral_id}"),
        (peer, f"QuestionnaireResponse?patient={patient}"),
    ):
        assert entries(await reader.ok("GET", path)), path
    resources = expand(seen)
    types = {r["resourceType"] for r in resources}
    assert {"Consent", "DocumentReference", "Procedure", "QuestionnaireResponse"} <= types
    assert validate(resources) == []
