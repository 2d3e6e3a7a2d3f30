"""The consent join of a read: per row, its patient's consents naming a `ConsentScope`'s
recipient, as `ConsentTerms`.

The policy point (api/services/policy.py) builds the scope and decides from what this reads
(`api.domain.consents.decide_disclosure`, the one rule, permits and refusals alike); this module
is only its SQL, joined into the statement that reads the rows, so a read and its consent
decisions cost one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg

from api.db.sql import Where
from api.domain.consents import ConsentScope, ConsentTerms, DataClass, Purpose

# The joined columns: one array per attribute, aligned, oldest consent first; NULL when none.
COLUMNS = (
    "joined_consents.consent_ids, joined_consents.consent_classes, "
    "joined_consents.consent_purposes, joined_consents.consent_starts, "
    "joined_consents.consent_ends, joined_consents.consent_revoked"
)


def join(w: Where, patient_column: str, scope: ConsentScope) -> str:
    """`LEFT JOIN LATERAL` of the consents of `patient_column`'s patient that name the
    recipient, whatever their state, oldest first (the order `decide_disclosure` names them in)."""
    recipient = w.param(scope.recipient_organization_id)
    order = "ORDER BY c.created_at, c.id"
    return (
        "LEFT JOIN LATERAL (SELECT "
        f"array_agg(c.id {order}) AS consent_ids, "
        f"array_agg(array_to_string(c.data_classes, ',') {order}) AS consent_classes, "
        f"array_agg(array_to_string(c.purposes, ',') {order}) AS consent_purposes, "
        f"array_agg(c.period_start {order}) AS consent_starts, "
        f"array_agg(c.period_end {order}) AS consent_ends, "
        f"array_agg(c.revoked {order}) AS consent_revoked "
        f"FROM consents c WHERE c.patient_id = {patient_column} "
        f"AND c.recipient_organization_id = {recipient}) AS joined_consents ON true"
    )


def terms_of(
    row: asyncpg.Record, patient_id: UUID, scope: ConsentScope
) -> tuple[ConsentTerms, ...]:
    ids: Sequence[UUID] | None = row["consent_ids"]
    if not ids:
        return ()
    starts: Sequence[datetime] = row["consent_starts"]
    ends: Sequence[datetime | None] = row["consent_ends"]
    revoked: Sequence[bool] = row["consent_revoked"]
    return tuple(
        ConsentTerms(
            id=consent_id,
            patient_id=patient_id,
            recipient_organization_id=scope.recipient_organization_id,
            purposes=frozenset(Purpose(p) for p in purposes.split(",")),
            data_classes=frozenset(DataClass(c) for c in classes.split(",")),
            period_start=start,
            period_end=end,
            revoked=was_revoked,
        )
        for consent_id, classes, purposes, start, end, was_revoked in zip(
            ids,
            row["consent_classes"],
            row["consent_purposes"],
            starts,
            ends,
            revoked,
            strict=True,
        )
    )
