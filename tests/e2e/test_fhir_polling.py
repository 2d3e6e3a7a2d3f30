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


async def test_if_modified_since_compares_at_second_precision(network: Network, peer: Fhir) -> None:
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


# --- oldest-first keyset walks --------------------------------------------------------------


def _stamps(resources: list[dict[str, object]]) -> list[tuple[str, str]]:
    return [(r["meta"]["lastUpdated"], r["id"]) for r in resources]  # type: ignore[index]


async def test_an_oldest_first_walk_meets_every_task_even_those_changed_during_it(
    network: Network, peer: Fhir
) -> None:
    created = [await _refer(network) for _ in range(5)]
    path: str | None = f"Task?owner=Organization/{network.peer.id}&_sort=_lastUpdated&_count=2"
    pages: list[list[dict[str, object]]] = []
    changed: list[str] = []
    while path is not None:
        bundle = await peer.ok("GET", path)
        pages.append(entries(bundle, "match"))
        path = _next_path(bundle)
        if len(pages) == 1:
            # Between pages the performer accepts one Task already seen and one not yet seen:
            # both move behind the cursor and are met again, none is skipped.
            unseen = next(i for i in reversed(created) if i not in {str(r["id"]) for r in pages[0]})
            changed = [str(pages[0][0]["id"]), unseen]
            for referral_id in changed:
                await _accept(network, referral_id)
    walked = [r for page in pages for r in page]
    assert {str(r["id"]) for r in walked} == set(created)
    assert _stamps(walked) == sorted(_stamps(walked))  # oldest change first, across pages
    last_two = walked[-2:]
    assert [str(r["id"]) for r in last_two] == changed
    assert all(r["status"] == "accepted" for r in last_two)
    assert all(len(page) <= 2 for page in pages)


async def test_polling_recipe_last_updated_gt_with_oldest_first_sees_only_later_changes(
    network: Network, peer: Fhir
) -> None:
    first, second = await _refer(network), await _refer(network)
    owner = f"owner=Organization/{network.peer.id}"
    bundle = await peer.ok("GET", f"Task?{owner}&_sort=_lastUpdated")
    seen = entries(bundle, "match")
    assert [r["id"] for r in seen] == [first, second]
    mark = str(seen[-1]["meta"]["lastUpdated"]).replace("+", "%2B")
    await _accept(network, first)
    third = await _refer(network)
    later = await peer.ok("GET", f"Task?{owner}&_lastUpdated=gt{mark}&_sort=_lastUpdated")
    assert [r["id"] for r in entries(later, "match")] == [first, third]


async def test_sort_on_service_request_procedure_and_healthcare_service(
    network: Network, clinic: Fhir
) -> None:
    ids = [await _refer(network) for _ in range(3)]
    oldest = await clinic.ok("GET", "ServiceRequest?_sort=_lastUpdated&_count=100")
    assert [r["id"] for r in entries(oldest, "match")][-3:] == ids
    newest = await clinic.ok("GET", "ServiceRequest?_sort=-_lastUpdated&_count=100")
    assert [r["id"] for r in entries(newest, "match")][:3] == ids[::-1]
    by_id = await clinic.ok("GET", f"ServiceRequest?_id={ids[2]},{ids[0]}&_sort=_lastUpdated")
    assert [r["id"] for r in entries(by_id, "match")] == [ids[0], ids[2]]
    for kind in ("Procedure", "HealthcareService"):
        response = await clinic.get(f"{kind}?_sort=_lastUpdated")
        assert response.status_code == 200, response.text
        assert _stamps(entries(response.json(), "match")) == sorted(
            _stamps(entries(response.json(), "match"))
        )


async def test_unsupported_sorts_and_cursors_of_the_other_order_are_refused(
    network: Network, peer: Fhir
) -> None:
    for path in ("Task?_sort=status", "Task?_sort=_lastUpdated,_id", "Patient?_sort=_lastUpdated"):
        response = await peer.get(path)
        assert response.status_code == 400, path
        assert issue_expressions(response.json()) == ["_sort"], path
    for _ in range(3):
        await _refer(network)
    bundle = await peer.ok("GET", "Task?_sort=_lastUpdated&_count=1")
    cursor = (_next_path(bundle) or "").split("_cursor=", 1)[1]
    response = await peer.get(f"Task?_sort=-_lastUpdated&_count=1&_cursor={cursor}")
    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["_cursor"]


async def test_the_capability_statement_declares_sort_where_it_works(
    client: httpx.AsyncClient,
) -> None:
    statement = (await client.get("/fhir/metadata")).json()
    params = {
        r["type"]: {p["name"] for p in r.get("searchParam", ())}
        for r in statement["rest"][0]["resource"]
    }
    assert "_sort" in params["Task"] and "_sort" in params["ServiceRequest"]
    assert "_sort" not in params["Patient"]
    conditional = {r["type"]: r["conditionalRead"] for r in statement["rest"][0]["resource"]}
    assert conditional["Task"] == "full-support"
