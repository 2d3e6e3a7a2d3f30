"""Regressions of issue 8, one test each: input that used to crash a door (a 500, a dropped
connection) is refused in the door's shape, naming where the problem is, and nothing is stored.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from fhir_flows import _consent
from fhir_support import FHIR_JSON, Fhir, issue_expressions
from graphql_support import GraphQL, error_codes
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from network import Network
from starlette.applications import Starlette

REGISTER = """mutation($input: RegisterPatientInput!) {
  registerPatient(input: $input) { id } }"""


def _patient_input(**fields: Any) -> dict[str, Any]:
    return {"givenName": "Ada", "familyName": "Lovelace", "birthDate": "1990-12-10", **fields}


def _fhir_patient(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": "Lovelace", "given": ["Ada"]}],
        "birthDate": "1990-12-10",
        **elements,
    }


@pytest.fixture
async def gql(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> GraphQL:
    return await GraphQL.as_organization(client, pool, network.clinic)


@pytest.fixture
async def fhir(client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network) -> Fhir:
    return await Fhir.as_organization(client, pool, network.clinic)


async def _patients(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM patients")
    return count


def _details(body: dict[str, Any]) -> list[tuple[str, str]]:
    (error,) = body["errors"]
    return [(d["field"], d["message"]) for d in error["extensions"].get("details", ())]


async def _raw_graphql(gql: GraphQL, content: bytes, **headers: str) -> httpx.Response:
    return await gql.client.post(
        "/graphql",
        content=content,
        headers={
            "authorization": f"Bearer {gql.token}",
            "content-type": "application/json",
            **headers,
        },
    )


async def _raw_fhir(
    fhir: Fhir, method: str, path: str, content: bytes, **headers: str
) -> httpx.Response:
    return await fhir.client.request(
        method,
        f"/fhir/{path}",
        content=content,
        headers={
            "authorization": f"Bearer {fhir.token}",
            "content-type": FHIR_JSON,
            "accept": FHIR_JSON,
            **headers,
        },
    )


# --- GraphQL: strings no field may hold ----------------------------------------------------------


async def test_a_nul_in_a_graphql_variable_is_refused_naming_its_path(
    gql: GraphQL, pool: asyncpg.Pool
) -> None:
    before = await _patients(pool)
    response = await gql.post(REGISTER, input=_patient_input(givenName="Ada\u0000"))

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert _details(response.json()) == [
        ("variables.input.givenName", "must not contain a NUL character")
    ]
    assert await _patients(pool) == before


async def test_a_lone_surrogate_in_a_graphql_variable_is_refused_naming_its_path(
    gql: GraphQL, pool: asyncpg.Pool
) -> None:
    body = json.dumps({"query": REGISTER, "variables": {"input": _patient_input()}})
    body = body.replace('"Lovelace"', '"Love\\ud800lace"')
    before = await _patients(pool)

    response = await _raw_graphql(gql, body.encode())

    assert response.status_code == 400
    ((field, message),) = _details(response.json())
    assert field == "variables.input.familyName"
    assert "surrogate" in message
    assert await _patients(pool) == before


async def test_a_nul_in_a_graphql_string_literal_is_refused_before_anything_runs(
    gql: GraphQL, pool: asyncpg.Pool
) -> None:
    before = await _patients(pool)
    body = await gql.run(
        'mutation { registerPatient(input: {givenName: "Ada\\u0000", familyName: "L"}) { id } }'
    )

    assert body.get("data") is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["extensions"]["details"] == [
        {"field": "registerPatient.input.givenName", "message": "must not contain a NUL character"}
    ]
    assert await _patients(pool) == before


async def test_a_nul_in_a_filter_or_an_idempotency_key_is_refused(gql: GraphQL) -> None:
    language = await gql.post(
        "query($f: ProgramFilterInput) { peerPrograms(filter: $f) { edges { cursor } } }",
        f={"language": "e\u0000n"},
    )
    key = await gql.run(
        'mutation { registerPatient(input: {givenName: "A", familyName: "L", '
        'idempotencyKey: "k\\u0000"}) { id } }'
    )

    assert _details(language.json()) == [
        ("variables.f.language", "must not contain a NUL character")
    ]
    assert key["errors"][0]["extensions"]["details"][0]["field"] == (
        "registerPatient.input.idempotencyKey"
    )


async def test_a_nul_in_a_get_parameter_is_refused(gql: GraphQL) -> None:
    response = await gql.client.get(
        "/graphql",
        params={"query": "{ viewer { clientId } }", "operationName": "x\u0000"},
        headers={"authorization": f"Bearer {gql.token}", "accept": "application/json"},
    )

    assert response.status_code == 400
    assert _details(response.json()) == [("operationName", "must not contain a NUL character")]


@pytest.mark.parametrize("encoded", ["AA", base64.urlsafe_b64encode(b"Clinic\x00").decode()])
async def test_a_cursor_that_decodes_to_nul_is_refused_naming_the_argument(
    gql: GraphQL, encoded: str
) -> None:
    body = await gql.run(
        "query($a: String) { organizations(after: $a) { edges { cursor } } }", a=encoded
    )

    assert error_codes(body) == [("organizations", "INVALID_INPUT")]
    assert body["errors"][0]["extensions"]["details"][0]["field"] == "after"


# --- GraphQL: bodies that are not one request ----------------------------------------------------


async def test_json_nested_a_hundred_thousand_deep_is_refused_and_the_connection_stays_usable(
    gql: GraphQL,
) -> None:
    deep = b'{"query": "{ viewer { clientId } }", "variables": {"x": ' + b"[" * 100_000
    deep += b"]" * 100_000 + b"}}"

    refused = await _raw_graphql(gql, deep)
    after = await gql.run("{ viewer { clientId } }")

    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "nested deeper than 64" in error["message"]
    assert after["data"]["viewer"]["clientId"]


@pytest.mark.parametrize("body", [b'"{ viewer { clientId } }"', b"42", b"null", b"[]", b"true"])
async def test_a_json_value_that_is_not_an_object_is_a_400_in_graphql_shape(
    gql: GraphQL, body: bytes
) -> None:
    response = await _raw_graphql(gql, body)

    assert response.status_code == 400
    assert response.headers.get("connection") != "close"
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "JSON object" in error["message"]


async def test_deep_json_over_a_websocket_closes_that_socket_only(
    app: Starlette, gql: GraphQL
) -> None:
    deep = '{"type": "connection_init", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}"
    transport = ASGIWebSocketTransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        aconnect_ws(
            "http://testserver/graphql", client, subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):
        await ws.send_text(deep)
        with pytest.raises(Exception) as closed:
            await ws.receive_text(timeout=5)
    assert getattr(closed.value, "code", None) == 4400

    assert (await gql.run("{ viewer { clientId } }"))["data"]["viewer"]["clientId"]


# --- GraphQL: federation representations ---------------------------------------------------------


async def test_each_bad_entity_representation_gets_its_own_error_and_the_rest_resolve(
    gql: GraphQL, network: Network
) -> None:
    representations = [
        {"__typename": "Nope", "id": str(network.clinic.id)},
        {"__typename": "Organization"},
        {"__typename": "Organization", "id": str(network.clinic.id)},
        {"__typename": "Organization", "id": "not-a-uuid"},
        "Organization",
        {"__typename": "Organization", "id": str(network.peer.id), "name": "x"},
        {"id": str(network.peer.id)},
    ]
    body = await gql.run(
        "query($r: [_Any!]!) { _entities(representations: $r) "
        "{ ... on Organization { id name } } }",
        r=representations,
    )

    assert body["data"]["_entities"] == [
        None,
        None,
        {"id": str(network.clinic.id), "name": network.clinic.name},
        None,
        None,
        None,
        None,
    ]
    assert error_codes(body) == [(f"_entities.{i}", "INVALID_INPUT") for i in (0, 1, 3, 4, 5, 6)]
    fields = [e["extensions"]["details"][0]["field"] for e in body["errors"]]
    assert fields == [
        "representations[0].__typename",
        "representations[1].id",
        "representations[3].id",
        "representations[4]",
        "representations[5]",
        "representations[6].__typename",
    ]


# --- FHIR ----------------------------------------------------------------------------------------


async def test_a_nul_in_a_search_parameter_is_a_400_naming_the_parameter(fhir: Fhir) -> None:
    response = await fhir.client.get(
        "/fhir/Patient?identifier=urn:x%00|a",
        headers={"authorization": f"Bearer {fhir.token}", "accept": FHIR_JSON},
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert issue_expressions(response.json()) == ["identifier"]


async def test_a_garbled_cursor_is_a_400_naming_the_parameter(fhir: Fhir) -> None:
    response = await fhir.get("Task?_cursor=AA")

    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["_cursor"]


@pytest.mark.parametrize(
    ("escaped", "reason"), [("\\u0000", "NUL"), ("\\udc00", "surrogate")], ids=["nul", "surrogate"]
)
async def test_an_unstorable_string_in_a_fhir_body_is_a_422_naming_the_element(
    fhir: Fhir, pool: asyncpg.Pool, escaped: str, reason: str
) -> None:
    body = json.dumps(_fhir_patient()).replace('"Lovelace"', f'"Love{escaped}lace"')
    before = await _patients(pool)

    response = await _raw_fhir(fhir, "POST", "Patient", body.encode())

    assert response.status_code == 422, response.text
    (issue,) = response.json()["issue"]
    assert issue["expression"] == ["Patient.name[0].family"]
    assert reason in issue["details"]["text"]
    assert await _patients(pool) == before


async def test_a_nul_in_a_bundle_entry_names_the_entry(fhir: Fhir) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient?identifier=a\u0000"}}],
    }
    response = await _raw_fhir(fhir, "POST", "", json.dumps(bundle).encode())

    assert response.status_code == 422
    assert issue_expressions(response.json()) == ["Bundle.entry[0].request.url"]


async def test_a_fhir_body_nested_a_hundred_thousand_deep_is_a_400(fhir: Fhir) -> None:
    response = await _raw_fhir(fhir, "POST", "Patient", b"[" * 100_000 + b"]" * 100_000)

    assert response.status_code == 400
    assert "nested deeper than 64" in response.json()["issue"][0]["details"]["text"]


def _extension_nested(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(levels):
        extension = {"url": "http://example.org/branch", "extension": [extension]}
    return extension


async def test_extensions_nested_150_deep_are_a_400_and_at_the_limit_no_500(fhir: Fhir) -> None:
    deep = await fhir.request("POST", "Patient", _fhir_patient(extension=[_extension_nested(150)]))
    # Patient(1) extension(2) [ (3) ... each level adds an object and a list.
    at_limit = await fhir.request(
        "POST", "Patient", _fhir_patient(extension=[_extension_nested(30)])
    )

    assert deep.status_code == 400
    assert "nested deeper" in deep.json()["issue"][0]["details"]["text"]
    assert at_limit.status_code < 500, at_limit.text


async def test_a_nul_in_the_idempotency_key_header_is_a_400_naming_the_header(
    fhir: Fhir, pool: asyncpg.Pool
) -> None:
    before = await _patients(pool)
    response = await _raw_fhir(
        fhir,
        "POST",
        "Patient",
        json.dumps(_fhir_patient()).encode(),
        **{"idempotency-key": "k\x00"},
    )

    assert response.status_code == 400
    assert issue_expressions(response.json()) == ["Idempotency-Key"]
    assert await _patients(pool) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""],
)
async def test_a_fhir_body_that_is_not_json_by_content_type_is_a_415(
    fhir: Fhir, pool: asyncpg.Pool, content_type: str
) -> None:
    before = await _patients(pool)
    response = await _raw_fhir(
        fhir,
        "POST",
        "Patient",
        json.dumps(_fhir_patient()).encode(),
        **{"content-type": content_type},
    )

    assert response.status_code == 415
    assert response.json()["issue"][0]["code"] == "not-supported"
    assert await _patients(pool) == before


@pytest.mark.parametrize(
    "content_type", ["application/fhir+json; charset=utf-8", "application/json", "Application/JSON"]
)
async def test_json_content_types_with_parameters_are_read(fhir: Fhir, content_type: str) -> None:
    response = await _raw_fhir(
        fhir,
        "POST",
        "Patient",
        json.dumps(_fhir_patient()).encode(),
        **{"content-type": content_type},
    )

    assert response.status_code == 201, response.text


# --- text limits, through both doors -------------------------------------------------------------


async def test_a_100_kb_given_name_is_refused_on_both_doors_and_not_stored(
    gql: GraphQL, fhir: Fhir, pool: asyncpg.Pool
) -> None:
    before = await _patients(pool)
    huge = "A" * 100_000

    graphql = await gql.run(REGISTER, input=_patient_input(givenName=huge))
    rest = await fhir.request(
        "POST", "Patient", _fhir_patient(name=[{"family": "L" * 201, "given": ["Ada"]}])
    )

    assert error_codes(graphql) == [("registerPatient", "INVALID_INPUT")]
    assert graphql["errors"][0]["extensions"]["details"] == [
        {"field": "givenName", "message": "at most 200 characters"}
    ]
    assert rest.status_code == 422, rest.text
    assert issue_expressions(rest.json()) == ["Patient.name.family"]
    assert await _patients(pool) == before


# --- instants that exist in no UTC year ----------------------------------------------------------

_PAST_THE_END = "9999-12-31T23:59:59-14:00"  # the year 10000 in UTC


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        (f"Task?_lastUpdated=gt{_PAST_THE_END}", "_lastUpdated"),
        ("Task?_lastUpdated=le9999-12-31T23:59:59.999999Z", "_lastUpdated"),
        ("Task?_lastUpdated=ge0001-01-01T00:00:00%2B14:00", "_lastUpdated"),
        ("Procedure?date=le9999-12-31T23:59:59.999999Z", "date"),
    ],
)
async def test_a_search_instant_at_the_end_of_time_is_a_400_naming_the_parameter(
    fhir: Fhir, query: str, parameter: str
) -> None:
    response = await fhir.get(query)

    assert response.status_code == 400, response.text
    assert issue_expressions(response.json()) == [parameter]


async def test_a_body_instant_past_the_end_of_time_is_refused_naming_the_element(
    fhir: Fhir, network: Network
) -> None:
    consent = _consent(
        f"Patient/{network.patient.id}", f"Organization/{network.peer.id}", ["referral"], "TREAT"
    )
    consent["provision"]["period"]["end"] = _PAST_THE_END

    response = await fhir.request("POST", "Consent", consent)

    assert 400 <= response.status_code < 500, response.text
    assert "Consent.provision.period.end" in issue_expressions(response.json())


@pytest.mark.parametrize("instant", [_PAST_THE_END, "0001-01-01T00:00:00+14:00"])
async def test_a_graphql_instant_that_is_no_utc_instant_is_a_user_error(
    gql: GraphQL, network: Network, instant: str
) -> None:
    referrals = await gql.run(
        "query($d: DateTime) { referrals(filter: {updatedSince: $d}) { edges { cursor } } }",
        d=instant,
    )
    audit = await gql.run(
        "query($p: ID!) { auditEvents(patientId: $p, before: " + json.dumps(instant) + ") { id } }",
        p=str(network.patient.id),
    )

    for body in (referrals, audit):
        (error,) = body["errors"]
        assert error["extensions"]["code"] in ("BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED")
        assert "outside the years 1 to 9999 in UTC" in error["message"]


@pytest.mark.parametrize("where", ["batch", "if-none-exist"])
async def test_a_percent_encoded_nul_in_a_bundle_url_or_criteria_is_a_400(
    fhir: Fhir, pool: asyncpg.Pool, where: str
) -> None:
    before = await _patients(pool)
    if where == "batch":
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": "Patient?identifier=urn:x%00|a"}}],
        }
        response = await fhir.request("POST", "", bundle)
        (entry,) = response.json()["entry"]
        assert entry["response"]["status"].startswith("400")
        assert issue_expressions(entry["response"]["outcome"]) == ["Patient.identifier"]
    else:
        response = await fhir.request(
            "POST", "Patient", _fhir_patient(), {"if-none-exist": "identifier=urn:x%00|a"}
        )
        assert response.status_code == 400, response.text
    assert await _patients(pool) == before


@pytest.mark.parametrize(
    ("count", "status"), [("9" * 5000, 200), ("²", 400), ("0", 400), ("0007", 200)]
)
async def test_count_values_int_cannot_read_are_refused_or_capped_not_500s(
    fhir: Fhir, count: str, status: int
) -> None:
    response = await fhir.get(f"Task?_count={quote(count)}")

    assert response.status_code == status, response.text
    if status == 400:
        assert issue_expressions(response.json()) == ["_count"]


async def test_an_unsupported_include_is_refused_without_echoing_it(fhir: Fhir) -> None:
    response = await fhir.get("Task?_include=Task:secret-marker")

    assert response.status_code == 400
    assert "secret-marker" not in response.text
    assert "Task:focus" in response.json()["issue"][0]["details"]["text"]
