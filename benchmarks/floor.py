"""The floor: a bare Starlette + asyncpg app answering the benchmark's questions the cheapest
honest way, to measure PeerBridge against.

Each answer is ONE SQL statement (the page or the referral, its patient's name and program,
and the consent decisions joined in) plus ONE batched INSERT of the audit rows PeerBridge
writes for it (same columns and values: a Referral read per referral, a Patient read per
patient shown or refused). It checks the same bearer token the same way (signature against
PeerBridge's JWKS, issuer, audience, expiry) and follows the same consent rule: a referral's
data goes to an organization that is not its requester only under a consent of the patient,
in force now, naming that organization for `referral` (and `substance_use` when the referral
shares it) and a sharing purpose; the patient's name needs `demographics` likewise. A referral
without one is answered redacted (`patient: null`, `redacted: true`).

    GET /floor/inbox          the caller's inbox: 50 newest changed, with patient and program
    GET /floor/referral/{id}  one referral the caller is party to (404 otherwise)

Run by the harness with uvicorn (`--factory benchmarks.floor:create_app`); configured by
BENCH_FLOOR_DATABASE_URL, BENCH_FLOOR_JWKS_URL, BENCH_FLOOR_ISSUER (also the audience).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE = 50
_PURPOSE_CODES = {"treatment": "TREAT", "care_coordination": "CAREMGT"}
_OWN_RECORDS = "HOPERAT"

# Consents of the page row's patient, in force now, naming the caller ($1) for `classes`.
_COVERING = """
    SELECT array_agg(DISTINCT c.id) AS ids, array_agg(DISTINCT u.purpose) AS purposes
    FROM consents c CROSS JOIN LATERAL unnest(c.purposes) AS u(purpose)
    WHERE c.patient_id = page.patient_id AND c.recipient_organization_id = $1
      AND NOT c.revoked AND c.period_start <= now()
      AND (c.period_end IS NULL OR c.period_end > now())
      AND c.data_classes @> {classes}
      AND c.purposes && ARRAY['treatment', 'care_coordination']
      AND u.purpose IN ('treatment', 'care_coordination')
"""

_ANSWER = f"""
WITH page AS ({{page}})
SELECT page.id, page.status, page.priority, page.patient_id,
       page.requester_organization_id = $1 AS own_referral,
       referral_consent.ids AS referral_consent_ids,
       referral_consent.purposes AS referral_purposes,
       patients.managing_organization_id = $1 AS own_patient,
       patient_consent.ids AS patient_consent_ids,
       patient_consent.purposes AS patient_purposes,
       patients.given_name, patients.family_name, peer_programs.name AS program_name
FROM page
JOIN patients ON patients.id = page.patient_id
LEFT JOIN peer_programs ON peer_programs.id = page.program_id
LEFT JOIN LATERAL ({_COVERING.format(classes="page.needed")}) AS referral_consent ON true
LEFT JOIN LATERAL ({_COVERING.format(classes="ARRAY['demographics']")}) AS patient_consent
    ON true
ORDER BY page.updated_at DESC, page.id DESC
"""

_PAGE_COLUMNS = """
    SELECT id, status, priority, patient_id, program_id, requester_organization_id, updated_at,
           CASE WHEN 'substance_use' = ANY (shared_data_classes)
                THEN ARRAY['referral', 'substance_use'] ELSE ARRAY['referral'] END AS needed
    FROM referrals
"""

INBOX_SQL = _ANSWER.format(
    page=_PAGE_COLUMNS
    + f"WHERE performer_organization_id = $1 ORDER BY updated_at DESC, id DESC LIMIT {PAGE}"
)
READ_SQL = _ANSWER.format(
    page=_PAGE_COLUMNS
    + "WHERE id = $2 AND (performer_organization_id = $1 OR requester_organization_id = $1)"
)

AUDIT_SQL = """
INSERT INTO audit_events (action, outcome, operation, resource_type, resource_id, patient_id,
                          client_id, organization_id, subject, purpose, consent_ids,
                          detail_code, source_ip, trace_id)
SELECT 'R', u.outcome, u.operation, u.resource_type, u.resource_id, u.patient_id,
       $1, $2, $3, u.purpose, string_to_array(u.consent_ids, ',')::uuid[], u.detail_code, $4, $5
FROM unnest($6::text[], $7::text[], $8::text[], $9::uuid[], $10::uuid[], $11::text[],
            $12::text[], $13::text[])
     AS u(outcome, operation, resource_type, resource_id, patient_id, purpose, consent_ids,
          detail_code)
"""


class _Unauthorized(Exception):
    pass


def _purpose(purposes: list[str] | None) -> str:
    if not purposes:
        return _OWN_RECORDS
    return " ".join(sorted(_PURPOSE_CODES[p] for p in purposes))


class _AuditRows:
    """The audit rows of one answer, as the columns of one batched INSERT."""

    def __init__(self) -> None:
        self.columns: list[list[Any]] = [[] for _ in range(8)]

    def add(
        self,
        outcome: str,
        operation: str,
        resource_type: str,
        resource_id: UUID,
        patient_id: UUID,
        purpose: str | None,
        consent_ids: list[UUID] | None,
        detail_code: str | None,
    ) -> None:
        ids = ",".join(str(c) for c in consent_ids or ())
        row = (outcome, operation, resource_type, resource_id, patient_id, purpose, ids,
               detail_code)  # fmt: skip
        for column, value in zip(self.columns, row, strict=True):
            column.append(value)


def _answer(row: asyncpg.Record, audit: _AuditRows) -> dict[str, Any]:
    """One referral as the caller may see it, recording the audit rows PeerBridge writes."""
    shown = row["own_referral"] or row["referral_consent_ids"] is not None
    audit.add(
        "success",
        "readReferral",
        "Referral",
        row["id"],
        row["patient_id"],
        _purpose(row["referral_purposes"]) if shown else _OWN_RECORDS,
        row["referral_consent_ids"] if shown else None,
        None if shown else "REDACTED",
    )
    patient = None
    if shown:
        if row["own_patient"] or row["patient_consent_ids"] is not None:
            patient = {"givenName": row["given_name"], "familyName": row["family_name"]}
            audit.add(
                "success",
                "readPatient",
                "Patient",
                row["patient_id"],
                row["patient_id"],
                _purpose(row["patient_purposes"]),
                row["patient_consent_ids"],
                None,
            )
        else:
            audit.add(
                "denied", "readPatient", "Patient", row["patient_id"], row["patient_id"], None,
                None, "CONSENT_REQUIRED",
            )  # fmt: skip
    name = row["program_name"]
    return {
        "id": str(row["id"]),
        "status": row["status"],
        "priority": row["priority"],
        "redacted": not shown,
        "patient": patient,
        "program": None if name is None else {"name": name},
    }


async def _caller(request: Request) -> dict[str, Any]:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise _Unauthorized
    keys: KeySet = request.app.state.keys
    issuer: str = request.app.state.issuer
    try:
        token = jwt.decode(header[7:], keys, algorithms=["ES384", "ES256", "RS256", "RS384"])
    except (JoseError, ValueError) as error:
        raise _Unauthorized from error
    claims = token.claims
    if (
        claims.get("iss") != issuer
        or claims.get("aud") != issuer
        or not isinstance(claims.get("exp"), int)
        or claims["exp"] < time.time()
    ):
        raise _Unauthorized
    return claims


async def _respond(request: Request, sql: str, *arguments: Any) -> Response:
    try:
        claims = await _caller(request)
    except _Unauthorized:
        return Response(status_code=401)
    organization_id = UUID(claims["org"])
    audit = _AuditRows()
    async with request.app.state.pool.acquire() as connection:
        rows = await connection.fetch(sql, organization_id, *arguments)
        answers = [_answer(row, audit) for row in rows]
        if answers:
            client = request.client
            await connection.execute(
                AUDIT_SQL,
                claims["client_id"],
                organization_id,
                claims["sub"],
                client.host if client else None,
                request.headers.get("traceparent"),
                *audit.columns,
            )
    if sql is READ_SQL:
        if not answers:
            return Response(status_code=404)
        body: Any = answers[0]
    else:
        body = {"referrals": answers}
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


async def inbox(request: Request) -> Response:
    return await _respond(request, INBOX_SQL)


async def referral(request: Request) -> Response:
    try:
        wanted = UUID(request.path_params["id"])
    except ValueError:
        return Response(status_code=404)
    return await _respond(request, READ_SQL, wanted)


async def _keep_session(connection: asyncpg.Connection) -> None:
    return None


async def healthz(request: Request) -> Response:
    return Response(status_code=200)


def create_app(
    database_url: str | None = None, jwks: dict[str, Any] | None = None, issuer: str | None = None
) -> Starlette:
    """The floor app; arguments left out come from the BENCH_FLOOR_* variables (uvicorn)."""
    database_url = database_url or os.environ["BENCH_FLOOR_DATABASE_URL"]
    issuer = issuer or os.environ["BENCH_FLOOR_ISSUER"]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        document: Any = jwks or httpx.get(os.environ["BENCH_FLOOR_JWKS_URL"], timeout=10).json()
        app.state.keys = KeySet.import_key_set(document)
        app.state.issuer = issuer
        # As many connections as PeerBridge's pool may open (PEERBRIDGE_DB_POOL_MAX_SIZE).
        # Released without a reset statement, as PeerBridge's pool does (api/db/pool.py): the
        # floor does the same work in the fewest round trips, so neither side pays for one.
        app.state.pool = await asyncpg.create_pool(
            database_url, min_size=2, max_size=10, reset=_keep_session
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    return Starlette(
        routes=[
            Route("/floor/healthz", healthz, methods=["GET"]),
            Route("/floor/inbox", inbox, methods=["GET"]),
            Route("/floor/referral/{id}", referral, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
