"""Trusted documents at the GraphQL door: Automatic Persisted Queries (Apollo's protocol) and
the production allowlist.

APQ: a request's `extensions.persistedQuery` is `{"version": 1, "sha256Hash": "<hex>"}`, the
SHA-256 of the exact query text. With the hash alone the document is looked up (this
process's LRU, then the database all workers share); unknown, the answer is Apollo's
`PersistedQueryNotFound` (`PERSISTED_QUERY_NOT_FOUND`, HTTP 200) and the client sends hash and
query together, which registers the query once its hash matches and it validates against the
schema. Only an authenticated caller's documents are kept in the database (bounded).

Allowlist (`PEERBRIDGE_GRAPHQL_TRUSTED_DOCUMENTS=allowlist`): only documents an operator
registered (`peerbridge graphql register`) run, whether sent by hash or in full, over HTTP or
a WebSocket; anything else is refused before it is parsed (`PERSISTED_QUERY_NOT_IN_LIST` for
an unknown hash, `QUERY_NOT_IN_SAFELIST` for a document, HTTP 400), and clients cannot
register documents.

Parsed and validated documents are cached by text (ParserCache, ValidationCache), so a
document known by its hash is parsed once per process whichever way it arrives.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import asyncpg
from graphql import GraphQLError, GraphQLSchema, parse, validate
from strawberry.http import GraphQLRequestData

from api.db import graphql_documents
from api.db.graphql_documents import StoredDocument
from api.schema.errors import BAD_REQUEST
from api.settings import Settings

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
NOT_IN_SAFELIST = "QUERY_NOT_IN_SAFELIST"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_LRU_SIZE = 1000


class DocumentRefused(Exception):
    """The request is answered with this GraphQL error, before anything runs."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"errors": [{"message": message, "extensions": {"code": code}}]}


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def schema_errors(schema: GraphQLSchema, document: str) -> list[str]:
    """Why `document` is not a valid operation of `schema` (empty: it is)."""
    try:
        parsed = parse(document)
    except GraphQLError as error:
        return [error.message]
    return [error.message for error in validate(schema, parsed)]


class TrustedDocuments:
    """The door's resolver of persisted queries and keeper of the allowlist, one per app."""

    def __init__(self, settings: Settings, schema: GraphQLSchema) -> None:
        self.allowlist_only = settings.graphql_trusted_documents == "allowlist"
        self._keep = settings.graphql_persisted_queries_max
        self._schema = schema
        self._known: OrderedDict[str, StoredDocument] = OrderedDict()

    async def resolve(
        self, request: GraphQLRequestData, pool: asyncpg.Pool, authenticated: bool
    ) -> GraphQLRequestData:
        """The request with its document, or DocumentRefused."""
        wanted = _persisted_hash(request.extensions)
        query = request.query
        if wanted is None:
            if self.allowlist_only and query is not None:
                await self._require_allowlisted(pool, sha256_of(query), NOT_IN_SAFELIST)
            return request
        if query is not None:
            if sha256_of(query) != wanted:
                raise DocumentRefused(400, "provided sha does not match query", BAD_REQUEST)
            if self.allowlist_only:
                await self._require_allowlisted(pool, wanted, NOT_IN_SAFELIST)
            elif authenticated:
                await self._register(pool, wanted, query)
            return request
        found = await self._find(pool, wanted, fresh_unless_allowlisted=self.allowlist_only)
        if self.allowlist_only and (found is None or not found.allowlisted):
            raise DocumentRefused(
                400, "PersistedQueryNotInList: only registered operations run here", NOT_IN_LIST
            )
        if found is None:
            raise DocumentRefused(200, "PersistedQueryNotFound", NOT_FOUND)
        return replace(request, query=found.document)

    async def allowed(self, pool: asyncpg.Pool, query: str | None) -> bool:
        """In allowlist mode, whether an operator registered this document (WebSocket)."""
        if not self.allowlist_only:
            return True
        if query is None:
            return False
        found = await self._find(pool, sha256_of(query), fresh_unless_allowlisted=True)
        return found is not None and found.allowlisted

    async def _require_allowlisted(self, pool: asyncpg.Pool, sha256: str, code: str) -> None:
        found = await self._find(pool, sha256, fresh_unless_allowlisted=True)
        if found is None or not found.allowlisted:
            raise DocumentRefused(
                400, "QueryNotInSafelist: only registered operations run here", code
            )

    async def _find(
        self, pool: asyncpg.Pool, sha256: str, *, fresh_unless_allowlisted: bool = False
    ) -> StoredDocument | None:
        found = self._known.get(sha256)
        if found is not None and (found.allowlisted or not fresh_unless_allowlisted):
            self._known.move_to_end(sha256)
            return found
        # Not known here, or known but perhaps allowlisted since by an operator.
        found = await graphql_documents.find(pool, sha256)
        if found is not None:
            self._cache(found)
        return found

    async def _register(self, pool: asyncpg.Pool, sha256: str, query: str) -> None:
        if sha256 in self._known or self._keep == 0:
            return
        # Only what would run is kept: a document that does not validate is not stored.
        if schema_errors(self._schema, query):
            return
        await graphql_documents.remember(pool, sha256, query, self._keep)
        self._cache(StoredDocument(sha256, query, allowlisted=False))

    def _cache(self, found: StoredDocument) -> None:
        self._known[found.sha256] = found
        self._known.move_to_end(found.sha256)
        while len(self._known) > _LRU_SIZE:
            self._known.popitem(last=False)


def _persisted_hash(extensions: dict[str, Any] | None) -> str | None:
    """The SHA-256 a request names in `extensions.persistedQuery`, checked; None if none."""
    if not extensions or "persistedQuery" not in extensions:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict):
        raise DocumentRefused(400, "extensions.persistedQuery must be an object", BAD_REQUEST)
    if persisted.get("version") != 1:
        raise DocumentRefused(400, "Unsupported persisted query version", BAD_REQUEST)
    wanted = persisted.get("sha256Hash")
    if not isinstance(wanted, str) or not _SHA256_HEX.fullmatch(wanted):
        raise DocumentRefused(
            400,
            "extensions.persistedQuery.sha256Hash must be the lowercase hex SHA-256 of the query",
            BAD_REQUEST,
        )
    return wanted
