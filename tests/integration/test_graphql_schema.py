"""The committed SDL is the served one: `schema.graphql` at the repository root, the
`_service { sdl }` answer and `peerbridge schema` are the same text, and a drift fails here.

After changing the schema on purpose: `peerbridge schema > schema.graphql`."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from api.cli.main import main
from api.schema.schema import print_sdl

COMMITTED = Path(__file__).parents[2] / "schema.graphql"
ENTITIES = {
    "Organization",
    "PeerProgram",
    "Location",
    "PeerSupporter",
    "Patient",
    "Referral",
    "Consent",
}


def test_the_committed_sdl_matches_the_schema() -> None:
    assert COMMITTED.read_text() == print_sdl() + "\n", (
        "schema.graphql is stale: run `peerbridge schema > schema.graphql` and commit it"
    )


def test_peerbridge_schema_prints_the_committed_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == COMMITTED.read_text()


async def test_service_sdl_serves_the_committed_sdl_without_a_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/graphql", json={"query": "{ _service { sdl } }"})

    assert response.status_code == 200
    assert response.json()["data"]["_service"]["sdl"] + "\n" == COMMITTED.read_text()


def test_the_sdl_is_a_federation_2_9_subgraph_with_the_seven_entities() -> None:
    sdl = COMMITTED.read_text()

    assert '@link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])' in sdl
    keyed = set(re.findall(r'^type (\w+)[^{]*@key\(fields: "id"\)', sdl, flags=re.MULTILINE))
    assert keyed == ENTITIES
    assert "union _Entity = " + " | ".join(sorted(ENTITIES)) in sdl
