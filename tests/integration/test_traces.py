"""OpenTelemetry traces (here into an in-memory exporter): a server span per request, the
GraphQL operation and every SQL statement as children, all under the caller's `traceparent`,
whose trace id the request's audit rows carry; and no span holds PHI (no query string, no
GraphQL document or variables, no SQL parameters)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fhir_support import FHIR_JSON
from graphql_support import token_for
from network import build_network
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette

from api.app import create_app
from api.observability import tracing
from api.settings import Settings

_FAMILY = "Zyxwvutsrq"
_REGISTER = """mutation Register($input: RegisterPatientInput!) {
  registerPatient(input: $input) { id } }"""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def traced_app(
    database_url: str, tmp_path: Path, exporter: InMemorySpanExporter
) -> AsyncIterator[Starlette]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings(database_url=database_url, data_dir=tmp_path,
                        audit_checkpoint_interval_s=0)
    app = create_app(settings, tracer_provider=provider)
    try:
        async with LifespanManager(app):
            yield app
    finally:
        tracing.untraced()


def _attribute_text(span: ReadableSpan) -> str:
    return " ".join(f"{key}={value}" for key, value in (span.attributes or {}).items())


async def test_one_trace_per_request_with_its_operation_and_statements_and_no_phi(
    traced_app: Starlette, exporter: InMemorySpanExporter
) -> None:
    pool = traced_app.state.pool
    network = await build_network(pool)
    transport = httpx.ASGITransport(app=traced_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        token = await token_for(client, pool, network.clinic)
        exporter.clear()
        trace_ids = [secrets.token_hex(16), secrets.token_hex(16)]

        def headers(trace_id: str) -> dict[str, str]:
            return {"authorization": f"Bearer {token}",
                    "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}

        registered = await client.post(
            "/graphql",
            json={"query": _REGISTER, "variables": {"input": {
                "givenName": "Ada", "familyName": _FAMILY, "birthDate": "1990-12-10"}}},
            headers=headers(trace_ids[0]),
        )
        searched = await client.get(
            f"/fhir/Patient?identifier=urn:oid:2.16.840.1.113883.3.9999.1|{_FAMILY}",
            headers={**headers(trace_ids[1]), "accept": FHIR_JSON},
        )
    assert registered.status_code == 200 and "errors" not in registered.json()
    assert searched.status_code == 200

    spans = exporter.get_finished_spans()
    by_trace = {
        trace_id: [s for s in spans if format(s.context.trace_id, "032x") == trace_id]
        for trace_id in trace_ids
    }
    graphql_names = {span.name for span in by_trace[trace_ids[0]]}
    assert {"POST graphql", "mutation registerPatient"} <= graphql_names
    assert any(span.attributes and "db.statement" in span.attributes
               for span in by_trace[trace_ids[0]])
    fhir_names = {span.name for span in by_trace[trace_ids[1]]}
    assert "GET fhir" in fhir_names
    assert len(fhir_names) > 1  # its SQL statements

    for span in spans:
        text = _attribute_text(span) + " " + span.name
        assert _FAMILY not in text, span.name
        assert "Ada" not in text, span.name
        assert "registerPatient(input" not in text, span.name  # no GraphQL document
        assert not any(key.startswith(("db.statement.parameters", "graphql.param"))
                       for key in (span.attributes or {})), span.name

    # The registration's audit row carries the trace id (the empty search audits nothing).
    audited = await pool.fetch(
        "SELECT operation FROM audit_events WHERE trace_id = $1", trace_ids[0]
    )
    assert [row["operation"] for row in audited] == ["registerPatient"]
