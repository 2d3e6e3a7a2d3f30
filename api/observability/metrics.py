"""Every Prometheus metric PeerBridge exports, in one place, and the helpers that move them.

Plain prometheus_client objects (no web framework), so any layer may count what it decides:
the policy point counts consent decisions, the audit repository counts rows, the doors count
requests. With `PROMETHEUS_MULTIPROC_DIR` set (`serve --workers N` sets it) prometheus_client
keeps each worker's values in files there and `/metrics` adds them up.

No label carries an id, a name, a client's free text or any PHI: every label value comes from
a fixed set (doors, FHIR interactions and resource types, the schema's own root field names,
HTTP status codes, OAuth error codes, consent outcomes).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Seconds. Spans the GraphQL/FHIR read path (single-digit ms) to the acquire and statement
# timeouts (2 s, 15 s), so a 503 after a full acquire wait lands in its own bucket.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter(
    "peerbridge_http_requests",
    "HTTP requests answered, by door, operation and status code.",
    ["door", "operation", "status"],
)
REQUEST_SECONDS = Histogram(
    "peerbridge_http_request_duration_seconds",
    "Time from request to the end of the response, by door.",
    ["door"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS_ISSUED = Counter(
    "peerbridge_oauth_tokens_issued", "Access tokens issued by /oauth/token."
)
TOKEN_REFUSALS = Counter(
    "peerbridge_oauth_token_refusals",
    "Refusals by /oauth/token (RFC 6749 error code) and of bearer tokens at the doors "
    "(`bearer_expired`, `bearer_invalid`).",
    ["reason"],
)
CONSENT_DECISIONS = Counter(
    "peerbridge_consent_decisions",
    "Disclosures decided at the policy point: permitted, or redacted (withheld) for want of "
    "an active consent.",
    ["decision"],
)
AUDIT_ROWS = Counter("peerbridge_audit_rows_written", "Audit trail rows written.")
RATE_LIMITED = Counter(
    "peerbridge_rate_limited_requests",
    "Requests refused with 429 by a rate limit, by limit.",
    ["limit"],
)
DB_CONNECTIONS_IN_USE = Gauge(
    "peerbridge_db_pool_connections_in_use",
    "Pooled database connections held by requests now (all live workers).",
    multiprocess_mode="livesum",
)
DB_ACQUIRES_WAITING = Gauge(
    "peerbridge_db_pool_acquires_waiting",
    "Requests waiting for a pooled database connection now (all live workers).",
    multiprocess_mode="livesum",
)


# Read from the database when /metrics is scraped (one statement), by the worker scraped.
OUTBOX_LAG_SECONDS = Gauge(
    "peerbridge_outbox_lag_seconds",
    "Age of the oldest outbox event not yet fanned out to deliveries (0 when none waits).",
    multiprocess_mode="mostrecent",
)
OUTBOX_UNPUBLISHED = Gauge(
    "peerbridge_outbox_unpublished_events",
    "Outbox events not yet fanned out to deliveries.",
    multiprocess_mode="mostrecent",
)
DELIVERIES_PENDING = Gauge(
    "peerbridge_deliveries_pending",
    "Subscription notifications waiting to be sent or retried.",
    multiprocess_mode="mostrecent",
)
DELIVERY_ATTEMPTS = Counter(
    "peerbridge_delivery_attempts",
    "Subscription notification sends by outcome: `sent` (2xx), `retry` (failed, tried again "
    "later), `dead` (failed, out of tries).",
    ["outcome"],
)
DELIVERIES_DEAD = Gauge(
    "peerbridge_deliveries_dead",
    "Subscription notifications that failed every attempt (see `peerbridge deliveries`).",
    multiprocess_mode="mostrecent",
)


def count_consent_decisions(permitted: int, redacted: int) -> None:
    if permitted:
        CONSENT_DECISIONS.labels("permitted").inc(permitted)
    if redacted:
        CONSENT_DECISIONS.labels("redacted").inc(redacted)
