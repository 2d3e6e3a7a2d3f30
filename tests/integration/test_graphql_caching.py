"""Parsing and validating dominate small queries: a repeated document is parsed and validated
once, with the limit rules in place (their rule classes are made once per schema)."""

from __future__ import annotations

import asyncpg
import httpx
from graphql_support import GraphQL
from network import Network
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from api.schema import extensions


async def test_a_repeated_document_is_parsed_and_validated_from_cache(
    client: httpx.AsyncClient, pool: asyncpg.Pool, network: Network
) -> None:
    peer = await GraphQL.as_organization(client, pool, network.peer)
    query = "query Cached { viewer { clientId } peerPrograms { edges { cursor } } }"
    await peer.data(query)
    parsed = _get_parse_cache(extensions._CACHE_SIZE).cache_info()
    validated = _get_validate_cache(extensions._CACHE_SIZE).cache_info()

    for _ in range(3):
        await peer.data(query)

    assert _get_parse_cache(extensions._CACHE_SIZE).cache_info().hits == parsed.hits + 3
    assert _get_validate_cache(extensions._CACHE_SIZE).cache_info().hits == validated.hits + 3
    assert _get_validate_cache(extensions._CACHE_SIZE).cache_info().misses == validated.misses
