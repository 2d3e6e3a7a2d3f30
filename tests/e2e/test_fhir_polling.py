"""Polling the FHIR door cheaply and safely: conditional reads (304) and oldest-first keyset
walks (`_sort=_lastUpdated`) that never lose a Task changed during the walk."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from uuid import UUID

import asyncpg
import httpx
import pytest
from fhir_support import Fhir, entries, issue_expressions
from network import Network

from api.db.uow import PostgresUnitOfWork
from api.domain.referrals import Transition
from api.services import consents, referrals
from api.services.referrals import CreateReferral


@pytest.fixture
async def clinic(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


@pytest.fixture
async def peer(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.peer)


async def _refer(network: Network) -> str:
    view = await referrals.create_referral(
        PostgresUnitOfWork(network.pool),
        network.as_clinic,
        CreateReferral(
            patient_id=network.patient.id,
            performer_organization_id=network.peer.id,
            program_id=network.program.id,
            reason_text="low mood",
        ),
    )
    return str(view.referral.id)


async def _accept(network: Network, referral_id: str) -> None:
    await referrals.transition_referral(
        PostgresUnitOfWork(network.pool), network.as_peer, UUID(referral_id), Transition.ACCEPT
    )


def _next_path(bundle: dict[str, object]) -> str | None:
    links = bundle.get("link") or []
    assert isinstance(links, list)
    url = next((link["url"] for link in links if link["relation"] == "next"), None)
    return url.split("/fhir/", 1)[1] if url else None


# --- conditional read ---------------------------------------------------------------------


async def test_if_none_match_with_the_current_version_is_304_with_validators_and_no_body(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    first = await peer.get(f"ServiceRequest/{referral_id}")
    assert first.status_code == 200
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    again = await peer.request(
        "GET", f"ServiceRequest/{referral_id}", headers={"if-none-match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag == 'W/"1"'
    assert again.headers["last-modified"] == last_modified
    listed = await peer.request(
        "GET", f"ServiceRequest/{referral_id}", headers={"if-none-match": 'W/"7", "1"'}
    )
    assert listed.status_code == 304
    vread = await peer.request(
        "GET", f"ServiceRequest/{referral_id}/_history/1", headers={"if-none-match": etag}
    )
    assert vread.status_code == 304


async def test_if_none_match_with_an_older_version_gets_the_new_one(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    await _accept(network, referral_id)
    response = await peer.request("GET", f"Task/{referral_id}", headers={"if-none-match": 'W/"1"'})
    assert response.status_code == 200
    assert response.headers["etag"] == 'W/"2"'
    assert response.json()["status"] == "accepted"


async def test_if_modified_since_compares_at_second_precision(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    first = await peer.get(f"Task/{referral_id}")
    last_modified = first.headers["last-modified"]
    updated = datetime.fromisoformat(first.json()["meta"]["lastUpdated"].replace("Z", "+00:00"))
    # The header drops the microseconds the record has: still "not modified since".
    assert parsedate_to_datetime(last_modified) == updated.replace(microsecond=0)
    same = await peer.request(
        "GET", f"Task/{referral_id}", headers={"if-modified-since": last_modified}
    )
    assert same.status_code == 304
    assert same.headers["etag"] == first.headers["etag"]
    earlier = format_datetime(parsedate_to_datetime(last_modified) - timedelta(seconds=1), True)
    older = await peer.request("GET", f"Task/{referral_id}", headers={"if-modified-since": earlier})
    assert older.status_code == 200
    assert older.json()["id"] == referral_id


async def test_if_modified_since_is_ignored_when_invalid_or_beside_if_none_match(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    first = await peer.get(f"Task/{referral_id}")
    for header in ("yesterday", "Fri, 01 Jan 2100 00:00:00 GMT"):  # garbage, future
        response = await peer.request(
            "GET", f"Task/{referral_id}", headers={"if-modified-since": header}
        )
        assert response.status_code == 200, header
    # If-None-Match decides when both are sent (RFC 9110 §13.2.2).
    both = await peer.request(
        "GET",
        f"Task/{referral_id}",
        headers={
            "if-none-match": 'W/"5"',
            "if-modified-since": first.headers["last-modified"],
        },
    )
    assert both.status_code == 200


async def test_a_malformed_if_none_match_is_refused_naming_the_header(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    response = await peer.request("GET", f"Task/{referral_id}", headers={"if-none-match": "1"})
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["If-None-Match"]


async def test_a_redacted_answer_is_never_304_so_a_revoked_consent_reaches_cached_copies(
    network: Network, peer: Fhir
) -> None:
    referral_id = await _refer(network)
    cached = await peer.get(f"ServiceRequest/{referral_id}")
    assert cached.json().get("reasonCode") or cached.json().get("note")
    await consents.revoke_consent(
        PostgresUnitOfWork(network.pool), network.as_clinic, network.consent.id
    )
    response = await peer.request(
        "GET", f"ServiceRequest/{referral_id}", headers={"if-none-match": cached.headers["etag"]}
    )
    assert response.status_code == 200
    labels = [label["code"] for label in response.json()["meta"]["security"]]
    assert "REDACTED" in labels
    assert response.headers["etag"] == cached.headers["etag"]  # same version, other content


async def test_search_ignores_conditional_headers(network: Network, peer: Fhir) -> None:
    await _refer(network)
    response = await peer.request("GET", "Task", headers={"if-none-match": "*"})
    assert response.status_code == 200
    assert entries(response.json(), "match")
