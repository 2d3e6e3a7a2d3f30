"""`/metrics`: the series move after a GraphQL query, a FHIR search and a refused token; no
label carries an id, a name or other PHI; with `serve --workers 2` the workers' counts add up;
a scraper token guards it, and production serves it only with one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fhir_support import Fhir
from graphql_support import GraphQL
from network import Network
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families
from serve_support import free_port, wait_ready

from api.app import create_app
from api.observability import http as observability_http
from api.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

# Label values come from fixed sets: doors, interactions and types, schema field names, codes.
_SAFE_LABEL_VALUE = re.compile(r"^[A-Za-z0-9_ .+/?-]{0,64}$")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def _samples(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("peerbridge_")
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def _scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return _samples(response.text)


async def test_series_move_and_no_label_carries_an_id_or_a_name(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    gql = await GraphQL.as_organization(client, pool, network.clinic)
    fhir = await Fhir.as_organization(client, pool, network.clinic)
    before = await _scrape(client)

    await gql.data("{ peerPrograms(first: 5) { edges { node { id name } } } }")
    await fhir.ok("GET", f"Patient/{network.patient.id}")
    await fhir.ok("GET", "Task?_count=5")
    refused = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=("nobody", "wrong")
    )
    assert refused.status_code == 401
    after = await _scrape(client)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    requests = "peerbridge_http_requests_total"
    assert moved(requests, door="graphql", operation="query peerPrograms", status="200") == 1
    assert moved(requests, door="fhir", operation="read Patient", status="200") == 1
    assert moved(requests, door="fhir", operation="search Task", status="200") == 1
    assert moved(requests, door="oauth", operation="-", status="401") == 1
    assert moved("peerbridge_http_request_duration_seconds_count", door="fhir") == 2
    assert moved("peerbridge_oauth_token_refusals_total", reason="invalid_client") == 1
    assert moved("peerbridge_oauth_tokens_issued_total") == 0  # tokens were taken before
    assert moved("peerbridge_consent_decisions_total", decision="permitted") >= 1
    assert moved("peerbridge_audit_rows_written_total") >= 1
    assert ("peerbridge_db_pool_connections_in_use", ()) in after
    assert _value(after, "peerbridge_outbox_lag_seconds") >= 0
    assert ("peerbridge_deliveries_dead", ()) in after

    secrets_and_names = {
        str(value)
        for value in (
            network.patient.id, network.clinic.id, network.peer.id, network.program.id,
            network.patient.given_name, network.patient.family_name, network.clinic.name,
            network.program.name, network.supporter.display_name,
        )
    }
    for (_name, labels), _ in after.items():
        for _label, value in labels:
            assert _SAFE_LABEL_VALUE.match(value), value
            assert not _UUID.search(value), value
            assert not any(secret in value for secret in secrets_and_names), value


async def test_a_metrics_token_guards_the_endpoint(database_url: str, tmp_path: Path) -> None:
    token = "scraper-token-0123456789"
    settings = Settings(database_url=database_url, data_dir=tmp_path, metrics_token=token)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        refused = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        allowed = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})

    assert refused.status_code == wrong.status_code == 401
    assert "peerbridge_http_requests_total" not in refused.text
    assert allowed.status_code == 200
    assert "peerbridge_http_requests_total" in allowed.text


def test_production_serves_metrics_only_with_a_token() -> None:
    production = Settings(environment="production", database_url="postgresql://db/x")
    assert observability_http.routes(production) == []
    guarded = production.model_copy(update={"metrics_token": "scraper-token-0123456789"})
    assert [route.path for route in observability_http.routes(guarded)] == ["/metrics"]


@pytest.mark.skipif(not Path("/proc").exists(), reason="Linux process model")
async def test_with_two_workers_the_counts_add_up(database_url: str, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PEERBRIDGE_DATA_DIR": str(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "api.cli.main", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_ready(port, serve, time.monotonic() + 120)
        sent = 0
        # A new connection per request, until both workers have answered some (bounded).
        while sent < 300 and len(_workers_that_answered_404(metrics_dir)) < 2:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as one:
                assert (await one.get("/no-such-page")).status_code == 404
            sent += 1
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
            scraped = await _scrape(scraper)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=60)

    assert len(_workers_that_answered_404(metrics_dir)) == 2, "one worker answered everything"
    total = _value(
        scraped, "peerbridge_http_requests_total", door="other", operation="-", status="404"
    )
    assert total == sent


def _workers_that_answered_404(directory: Path) -> set[str]:
    """Pids whose own counter file (counter_<pid>.db) counts a 404 request."""
    return {
        path.stem.removeprefix("counter_")
        for path in directory.glob("counter_*.db")
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path))
        if value > 0 and '"door": "other"' in key and '"status": "404"' in key
    }
