"""PHQ-9 and GAD-7 as clinics send them: against LOINC's Questionnaires (linkIds the LOINC item
codes, LOINC answer codes) or PeerBridge's own, scored the same and read back as sent."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from fhir_support import Fhir, entries
from fidelity_support import assert_read_back, expressions
from graphql_support import GraphQL
from network import Network
from records_samples import LOINC, coded, response, scored

from api.domain.consents import DataClass, Purpose
from api.domain.outcomes import Instrument
from api.services import consents, referrals
from api.services.referrals import CreateReferral

REFS = ("subject", "author", "basedOn")
MEASURES = "query($p: ID!) { patient(id: $p) { outcomeMeasures { id instrument itemAnswers total safetySignal fhir } } }"  # noqa: E501


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    """The peer organization, with the patient referred to it (so it records measures)."""
    await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    return await Fhir.as_organization(client, pool, network.peer)


async def test_phq9_and_gad7_as_loinc_or_peerbridge_questionnaires_score_the_same(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, peer: Fhir
) -> None:
    phq9 = [1, 2, 0, 3, 1, 0, 2, 1, 1]
    gad7 = [2, 2, 1, 0, 3, 1, 0]
    difficulty = {
        "linkId": "/69722-7",
        "answer": [{"valueCoding": {"system": LOINC, "code": "LA6573-5"}}],
    }
    total = {"linkId": "/44261-6", "answer": [{"valueInteger": sum(phq9)}]}
    own = "https://peerbridge.example.org/fhir/Questionnaire"
    sent = [
        response(
            network,
            "http://loinc.org/q/44249-1",
            [*coded(Instrument.PHQ9, phq9, slash=True), total, difficulty],
        ),
        response(network, "http://loinc.org/q/69737-5", scored(Instrument.GAD7, gad7)),
        response(network, f"{own}/phq9", coded(Instrument.PHQ9, phq9)),
        response(network, f"{own}/gad7|1.0", scored(Instrument.GAD7, gad7)),
    ]
    created = [await peer.ok("POST", "QuestionnaireResponse", body) for body in sent]
    gql = await GraphQL.as_organization(client, pool, network.peer)
    listed = (await gql.data(MEASURES, p=str(network.patient.id)))["patient"]["outcomeMeasures"]
    by_id = {m["id"]: m for m in listed}
    searched = {
        r["id"]: r
        for r in entries(
            await peer.ok("GET", f"QuestionnaireResponse?patient=Patient/{network.patient.id}")
        )
    }
    for body, made in zip(sent, created, strict=True):
        read = await peer.ok("GET", f"QuestionnaireResponse/{made['id']}")
        graphql = by_id[made["id"]]
        assert_read_back(
            body, made, read, searched[made["id"]], graphql["fhir"], references=REFS,
            derived=("author",),
        )  # fmt: skip
        is_phq9 = "44249-1" in body["questionnaire"] or body["questionnaire"].endswith("phq9")
        assert graphql["itemAnswers"] == (phq9 if is_phq9 else gad7)
        assert graphql["total"] == sum(phq9 if is_phq9 else gad7)
        assert graphql["safetySignal"] is is_phq9  # item 9 answered "Several days"
        observation = await peer.ok("GET", f"Observation/{made['id']}")
        assert observation["valueInteger"] == graphql["total"]


async def test_a_response_the_rules_cannot_score_is_refused_naming_the_element(
    network: Network, peer: Fhir
) -> None:
    phq9 = [0] * 9
    loinc = "http://loinc.org/q/44249-1"
    wrong_answer = coded(Instrument.PHQ9, phq9)
    wrong_answer[3]["answer"][0]["valueCoding"]["code"] = "LA6572-7"
    wrong_total = [*coded(Instrument.PHQ9, phq9), {"linkId": "44261-6", "answer": [{"valueInteger": 4}]}]  # noqa: E501
    unknown = [*coded(Instrument.PHQ9, phq9), {"linkId": "99999-9", "answer": [{"valueInteger": 1}]}]  # noqa: E501
    too_high = scored(Instrument.PHQ9, phq9)
    too_high[8]["answer"][0]["valueInteger"] = 4
    twice = [*scored(Instrument.PHQ9, phq9), scored(Instrument.PHQ9, phq9)[0]]
    cases = {
        "QuestionnaireResponse.item[3].answer[0].valueCoding": response(
            network, loinc, wrong_answer
        ),
        "QuestionnaireResponse.item[9].answer[0]": response(network, loinc, wrong_total),
        "QuestionnaireResponse.item[9].linkId": response(network, loinc, unknown),
        "QuestionnaireResponse.item[8].answer[0]": response(network, loinc, too_high),
        "QuestionnaireResponse.item[9]": response(network, loinc, twice),
        "QuestionnaireResponse.item": response(network, loinc, scored(Instrument.PHQ9, phq9)[:8]),
        "QuestionnaireResponse.status": response(
            network, loinc, scored(Instrument.PHQ9, phq9), status="in-progress"
        ),
        "QuestionnaireResponse.author": response(
            network, loinc, scored(Instrument.PHQ9, phq9),
            author={"reference": f"Organization/{network.clinic.id}"},
        ),
        "QuestionnaireResponse.questionnaire": response(
            network, "http://loinc.org/q/88121-9", scored(Instrument.PHQ9, phq9)
        ),
    }  # fmt: skip
    for expression, body in cases.items():
        refused = await peer.request("POST", "QuestionnaireResponse", body)
        assert refused.status_code == 422, (expression, refused.text)
        assert expressions(refused.json()) == [expression], refused.text
    listed = await peer.ok("GET", f"QuestionnaireResponse?patient=Patient/{network.patient.id}")
    assert "entry" not in listed


async def test_a_revoked_consent_hides_a_kept_response_from_the_clinic_on_both_doors(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network, peer: Fhir
) -> None:
    back = await consents.grant_consent(
        network.uow(),
        network.as_clinic,
        consents.GrantConsent(
            patient_id=network.patient.id,
            recipient_organization_id=network.clinic.id,
            purposes=frozenset({Purpose.TREATMENT}),
            data_classes=frozenset({DataClass.OUTCOMES}),
        ),
    )
    very = {"system": LOINC, "code": "LA6575-0", "display": "Very difficult"}
    note = {"linkId": "69722-7", "text": "Says work is hard", "answer": [{"valueCoding": very}]}
    body = response(
        network, "http://loinc.org/q/44249-1", [*coded(Instrument.PHQ9, [1] * 9), note]
    )
    made = await peer.ok("POST", "QuestionnaireResponse", body)
    clinic = await Fhir.as_organization(client, pool, network.clinic)
    gql = await GraphQL.as_organization(client, pool, network.clinic)
    assert (await clinic.ok("GET", f"QuestionnaireResponse/{made['id']}"))["item"][-1] == note
    assert "work is hard" in str(await gql.data(MEASURES, p=str(network.patient.id)))

    await consents.revoke_consent(network.uow(), network.as_clinic, back.id)
    refused = await clinic.get(f"QuestionnaireResponse/{made['id']}")
    assert refused.status_code == 403
    searched = await clinic.ok("GET", f"QuestionnaireResponse?patient=Patient/{network.patient.id}")
    seen = await gql.run(MEASURES, p=str(network.patient.id))
    for answer in (refused.json(), searched, seen):
        assert "work is hard" not in str(answer)
