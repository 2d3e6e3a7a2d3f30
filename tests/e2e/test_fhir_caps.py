"""The FHIR door's caps on work per request (settings `fhir_max_bundle_entries`,
`fhir_max_included`): too many Bundle entries are refused before any runs; included resources
past the cap are left out, and the searchset says so in an outcome entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fhir_support import Fhir, entries, issue_expressions
from network import Network

from api.services import referrals
from api.services.referrals import CreateReferral
from api.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Small caps, so a test can cross them with a few records."""
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        fhir_max_bundle_entries=3,
        fhir_max_included=2,
    )


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


def _batch(count: int, network: Network) -> dict[str, Any]:
    entry = {"request": {"method": "GET", "url": f"Patient/{network.patient.id}"}}
    return {"resourceType": "Bundle", "type": "batch", "entry": [entry] * count}


async def test_a_bundle_over_the_entry_cap_is_a_413_naming_bundle_entry(
    clinic: Fhir, network: Network
) -> None:
    at_cap = await clinic.request("POST", "", _batch(3, network))
    over = await clinic.request("POST", "", _batch(4, network))
    transaction = await clinic.request("POST", "", {**_batch(4, network), "type": "transaction"})

    assert at_cap.status_code == 200, at_cap.text
    for refused in (over, transaction):
        assert refused.status_code == 413
        (issue,) = refused.json()["issue"]
        assert issue["code"] == "too-long"
        assert issue_expressions(refused.json()) == ["Bundle.entry"]
        assert "at most 3 entries" in issue["details"]["text"]


async def test_includes_past_the_cap_are_left_out_and_an_outcome_entry_says_so(
    clinic: Fhir, network: Network
) -> None:
    await referrals.create_referral(
        network.uow(),
        network.as_clinic,
        CreateReferral(patient_id=network.patient.id, performer_organization_id=network.peer.id),
    )
    # The patient, the requesting clinic and the performing peer organization: three includes.
    bundle = await clinic.ok(
        "GET",
        "ServiceRequest?_include=ServiceRequest:patient&_include=ServiceRequest:requester"
        "&_include=ServiceRequest:performer",
    )

    assert len(entries(bundle, "match")) == 1
    assert len(entries(bundle, "include")) == 2
    (outcome,) = entries(bundle, "outcome")
    (issue,) = outcome["issue"]
    assert (issue["severity"], issue["code"], issue["expression"]) == (
        "warning",
        "too-costly",
        ["_include"],
    )
    assert issue["details"]["text"].startswith("1 more resources matched _include")
