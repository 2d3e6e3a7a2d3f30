"""Fuzzing both doors with hostile strings and structures (hypothesis, fixed budget): GraphQL
variables, string literals and raw bodies; FHIR bodies, search parameters and headers; cursors.

Whatever arrives, the answer is a 4xx or a 2xx in the door's shape — never a 5xx, never a
stack trace or SQL text in the body — and the service is still ready afterwards."""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from fhir_flows import referral_transaction
from fhir_support import FHIR_JSON
from graphql_support import token_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from network import Network

from api.integrations.fhir.rest.search_parameters import SEARCH_PARAMS

# A fixed budget per surface: enough to cover the strategies, small enough for 2 shared cores.
_BUDGET = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# What must never reach a client: frames, driver or server error text.
_LEAKS = (
    "Traceback",
    'File "/',
    "asyncpg",
    "psycopg",
    "syntax error at or near",
    "violates",
    "duplicate key",
    "invalid byte sequence",
    "RecursionError",
    "UnicodeEncodeError",
    "KeyError",
    "AttributeError",
)

_NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud83d",
    "\U0001f600",
    "\u202egnp.exe",
    "\r\nSet-Cookie: x=1",
    "'; DROP TABLE patients; --",
    "%00",
    "Patient?identifier=urn:x%00|a",
    "identifier=%ED%A0%80",
    "\\u0000",
    "../../etc/passwd",
    "null",
    "[" * 200,
    "{" * 200,
    "A" * 5000,
    "9" * 5000,
    "\u00b2",
    "urn:uuid:" + "0" * 36,
    "Patient/../Patient",
    "Patient/00000000-0000-0000-0000-000000000000",
    "gt2026-13-45T99:99:99Z",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "le9999-12-31T23:59:59.999999Z",
    "eq",
    "|||",
    "\x1b[31m",
]

_unicode = st.text(st.characters(codec="utf-8", exclude_categories=()), max_size=40)
_surrogates = st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
    min_size=1,
    max_size=3,
)
hostile_text = st.one_of(
    st.sampled_from(_NASTY),
    _unicode,
    st.builds(lambda a, b, c: a + b + c, _unicode, _surrogates | st.just("\x00"), _unicode),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4)


hostile_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    _containers,
    max_leaves=20,
)
# Past the depth limit, yet shallow enough for the test's own json.dumps.
deeply_nested = st.integers(min_value=60, max_value=400).map(
    lambda depth: json.loads("[" * depth + "]" * depth)
)
hostile_value = st.one_of(hostile_json, deeply_nested)


def _json_bytes(value: Any) -> bytes:
    """JSON as a client could send it: lone surrogates written as `\\udxxx` escapes."""
    return json.dumps(value, ensure_ascii=True).encode()


def _encoded(text: str) -> str:
    """Percent-encoded as a client could send it (a surrogate as its invalid UTF-8 bytes)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _deep_json(depth: int) -> bytes:
    return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"


def _assert_sane(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    text = response.text
    for leak in _LEAKS:
        assert leak not in text, (leak, text[:500])
    if response.status_code == 304 or not text:
        return
    body = response.json()  # every answer is JSON in the door's shape
    # A masked crash is still a crash: no resolver or interaction may fail unexpectedly.
    if isinstance(body, dict):
        codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or ()]
        assert "INTERNAL_SERVER_ERROR" not in codes, text[:500]
        if body.get("resourceType") == "OperationOutcome":
            assert all(issue["code"] != "exception" for issue in body["issue"]), text[:500]


@pytest.fixture
async def headers(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> dict[str, str]:
    token = await token_for(client, pool, network.clinic)
    return {"authorization": f"Bearer {token}"}


async def _still_ready(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text


# --- GraphQL ---------------------------------------------------------------------------------

_OPERATIONS = [
    "mutation($v: RegisterPatientInput!) { registerPatient(input: $v) { id givenName } }",
    "mutation($v: CreateReferralInput!) { createReferral(input: $v) { id status } }",
    "mutation($v: GrantConsentInput!) { grantConsent(input: $v) { id } }",
    "mutation($v: UpsertPeerProgramInput!) { upsertPeerProgram(input: $v) { id } }",
    "mutation($v: ReferralTransitionInput!) { rejectReferral(input: $v) { id } }",
    "query($v: ProgramFilterInput) { peerPrograms(filter: $v) { edges { cursor } } }",
    "query($v: SupporterFilterInput) { peerSupporters(filter: $v) { edges { cursor } } }",
    "query($v: String) { organizations(after: $v) { edges { cursor } } }",
    "query($v: String) { referrals(after: $v) { edges { cursor } } }",
    "query($v: String) { peerPrograms(after: $v) { edges { cursor } } }",
    "query($v: ID!) { node(id: $v) { id } }",
    "query($v: ID!) { patient(id: $v) { id givenName } }",
    "query($v: ID!) { auditEvents(patientId: $v) { id } }",
    "query($v: [_Any!]!) { _entities(representations: $v) { __typename } }",
]


@_BUDGET
@given(operation=st.sampled_from(_OPERATIONS), value=hostile_value, key=hostile_text)
async def test_hostile_graphql_variables_never_crash(
    client: httpx.AsyncClient, headers: dict[str, str], operation: str, value: Any, key: str
) -> None:
    body = {"query": operation, "variables": {"v": value, key: value}}
    response = await client.post(
        "/graphql",
        content=_json_bytes(body),
        headers={**headers, "content-type": "application/json"},
    )

    _assert_sane(response)


_LITERAL_TEMPLATES = [
    'mutation {{ registerPatient(input: {{givenName: {s}, familyName: "L"}}) {{ id }} }}',
    'mutation {{ registerPatient(input: {{givenName: "A", familyName: "L", '
    "idempotencyKey: {s}}}) {{ id }} }}",
    "{{ peerPrograms(filter: {{language: {s}}}) {{ edges {{ cursor }} }} }}",
    "{{ organizations(after: {s}) {{ edges {{ cursor }} }} }}",
    "{{ node(id: {s}) {{ id }} }}",
    "{{ _entities(representations: [{{__typename: {s}, id: {s}}}]) {{ __typename }} }}",
    "query($x: String = {s}) {{ viewer {{ clientId }} }}",
]


@_BUDGET
@given(template=st.sampled_from(_LITERAL_TEMPLATES), literal=hostile_text, raw=hostile_text)
async def test_hostile_graphql_documents_never_crash(
    client: httpx.AsyncClient, headers: dict[str, str], template: str, literal: str, raw: str
) -> None:
    document = template.format(s=json.dumps(literal))
    for query in (document, raw, document.replace("{", raw, 1)):
        response = await client.post(
            "/graphql",
            content=_json_bytes({"query": query}),
            headers={**headers, "content-type": "application/json"},
        )
        _assert_sane(response)
    query_string = "&".join(
        f"{name}={_encoded(value)}"
        for name, value in (("query", document), ("variables", raw), ("operationName", raw))
    )
    response = await client.get(
        f"/graphql?{query_string}", headers={**headers, "accept": "application/json"}
    )
    _assert_sane(response)


_CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/fhir+json",
    "application/graphql-response+json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
]


@_BUDGET
@given(
    value=hostile_value,
    content_type=st.sampled_from(_CONTENT_TYPES),
    depth=st.integers(min_value=0, max_value=100_000),
    junk=st.binary(max_size=200),
)
async def test_hostile_graphql_bodies_never_crash(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    value: Any,
    content_type: str,
    depth: int,
    junk: bytes,
) -> None:
    for content in (_json_bytes(value), _deep_json(depth), junk):
        response = await client.post(
            "/graphql", content=content, headers={**headers, "content-type": content_type}
        )
        _assert_sane(response)
    await _still_ready(client)


# --- FHIR ------------------------------------------------------------------------------------


def _replace_somewhere(value: Any, path: list[int], replacement: Any) -> Any:
    """The value with one element (chosen by `path`, taken modulo each level's size) replaced."""
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    step, rest = path[0], path[1:]
    if isinstance(value, list):
        index = step % len(value)
        return [
            _replace_somewhere(v, rest, replacement) if i == index else v
            for i, v in enumerate(value)
        ]
    key = list(value)[step % len(value)]
    return {
        k: _replace_somewhere(v, rest, replacement) if k == key else v for k, v in value.items()
    }


def _templates(network: Network) -> list[tuple[str, str, dict[str, Any]]]:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.3", "value": f"MRN-{secrets.token_hex(3)}"}],
        "name": [{"family": "Okafor", "given": ["Chidi"]}],
        "birthDate": "1988-02-03",
    }
    bundle = referral_transaction(network)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{network.patient.id}"}},
            {"request": {"method": "GET", "url": "Task?_include=Task:focus"}},
        ],
    }
    return [
        ("POST", "Patient", patient),
        ("POST", "", bundle),
        ("POST", "", batch),
        ("PUT", f"Patient/{network.patient.id}", {**patient, "id": str(network.patient.id)}),
        ("POST", "Task", {"resourceType": "Task", "status": "requested"}),
    ]


_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)


@_BUDGET
@given(
    template=st.integers(min_value=0, max_value=4),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=8),
    replacement=hostile_value,
    content_type=st.sampled_from(_CONTENT_TYPES),
    idempotency_key=st.none() | _header_text,
    if_match=st.none() | _header_text,
)
async def test_hostile_fhir_bodies_and_headers_never_crash(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    network: Network,
    template: int,
    path: list[int],
    replacement: Any,
    content_type: str,
    idempotency_key: str | None,
    if_match: str | None,
) -> None:
    method, url, resource = _templates(network)[template]
    body = _replace_somewhere(resource, path, replacement)
    extra: dict[str, str | bytes] = {"content-type": content_type, "accept": FHIR_JSON}
    # Header values go as bytes: any octet a client could put on the wire (latin-1).
    if idempotency_key is not None:
        extra["idempotency-key"] = idempotency_key.encode("latin-1")
    if if_match is not None:
        extra["if-match"] = if_match.encode("latin-1")
    response = await client.request(
        method, f"/fhir/{url}", content=_json_bytes(body), headers={**headers, **extra}
    )

    _assert_sane(response)


@_BUDGET
@given(
    resource_type=st.sampled_from(sorted(SEARCH_PARAMS)),
    pairs=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "_id",
                    "patient",
                    "status",
                    "identifier",
                    "_lastUpdated",
                    "_count",
                    "_cursor",
                    "_include",
                    "_revinclude",
                    "_sort",
                    "owner",
                    "code",
                    "date",
                    "_total",
                ]
            )
            | hostile_text,
            hostile_text,
        ),
        min_size=1,
        max_size=4,
    ),
    raw_path=hostile_text,
)
async def test_hostile_fhir_searches_and_paths_never_crash(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    resource_type: str,
    pairs: list[tuple[str, str]],
    raw_path: str,
) -> None:
    query = "&".join(f"{_encoded(name)}={_encoded(value)}" for name, value in pairs)
    for url in (
        f"/fhir/{resource_type}?{query}",
        f"/fhir/{resource_type}/{_encoded(raw_path)}",
        f"/fhir/{_encoded(raw_path)}?{query}",
    ):
        response = await client.get(url, headers={**headers, "accept": FHIR_JSON})
        _assert_sane(response)
    await _still_ready(client)
