"""The consent join of a read: per row, its patient's consents in force under an `InForceScope`.

The policy point (api/services/policy.py) builds the scope and decides from what this reads
(`api.domain.consents.permit_in_force`); this module is only its SQL, joined into the statement
that reads the rows, so a read and its consent decision cost one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from api.db.sql import Where
from api.domain.consents import ConsentInForce, DataClass, InForceScope, Purpose

# The joined columns: one array per consent attribute, aligned, NULL when none is in force.
COLUMNS = "in_force.consent_ids, in_force.consent_classes, in_force.consent_purposes"


def join(w: Where, patient_column: str, scope: InForceScope) -> str:
    """`LEFT JOIN LATERAL` of the consents of `patient_column`'s patient that name the
    recipient, are in force at `scope.now` (not revoked, begun, not ended) and allow one of
    the scope's purposes, oldest first (the order `decide_disclosure` names them in)."""
    recipient = w.param(scope.recipient_organization_id)
    now = w.param(scope.now)
    purposes = w.param(sorted(p.value for p in scope.purposes))
    order = "ORDER BY c.created_at, c.id"
    return (
        "LEFT JOIN LATERAL (SELECT "
        f"array_agg(c.id {order}) AS consent_ids, "
        f"array_agg(array_to_string(c.data_classes, ',') {order}) AS consent_classes, "
        f"array_agg(array_to_string(c.purposes, ',') {order}) AS consent_purposes "
        f"FROM consents c WHERE c.patient_id = {patient_column} "
        f"AND c.recipient_organization_id = {recipient} AND NOT c.revoked "
        f"AND c.period_start <= {now} AND (c.period_end IS NULL OR c.period_end > {now}) "
        f"AND c.purposes && {purposes}::text[]) AS in_force ON true"
    )


def consents_of(row: asyncpg.Record) -> tuple[ConsentInForce, ...]:
    ids: Sequence[UUID] | None = row["consent_ids"]
    if not ids:
        return ()
    return tuple(
        ConsentInForce(
            consent_id,
            frozenset(DataClass(c) for c in classes.split(",")),
            frozenset(Purpose(p) for p in purposes.split(",")),
        )
        for consent_id, classes, purposes in zip(
            ids, row["consent_classes"], row["consent_purposes"], strict=True
        )
    )
