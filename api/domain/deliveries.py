"""Subscriptions and their deliveries: topics, filters, retry timing and endpoint rules.

A subscription belongs to one organization and follows one topic (a canonical URL). Each
committed outbox event the topic and filters accept becomes one delivery per subscription,
sent at least once with a stable notification id; a delivery that keeps failing is retried
with exponential backoff and jitter, then marked dead (an operator can retry it).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit
from uuid import UUID

from api.domain.errors import Invalid
from api.domain.events import PublishedEvent


class NotificationKind(StrEnum):
    HANDSHAKE = "handshake"
    HEARTBEAT = "heartbeat"
    EVENT = "event-notification"
    QUERY_STATUS = "query-status"  # the answer to $status, never queued


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class SubscriptionStatus(StrEnum):
    REQUESTED = "requested"
    ACTIVE = "active"
    ERROR = "error"
    OFF = "off"


class PayloadContent(StrEnum):
    EMPTY = "empty"
    ID_ONLY = "id-only"
    FULL_RESOURCE = "full-resource"


@dataclass(frozen=True)
class Topic:
    """A subscription topic: which resource it reports, the filters it takes (name → how to
    read the value from a referral event)."""

    canonical: str
    resource_type: str
    title: str
    filters: tuple[str, ...]


# Gravity SDOH Clinical Care's Task topic (the Coordination Platform's SHALL) and PeerBridge's
# own ServiceRequest topic; both fire on every committed change to a referral.
TASK_TOPIC = Topic(
    "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task",
    "Task",
    "Task created or changed (Gravity SDOH Clinical Care)",
    ("owner", "requester", "status", "code"),
)
SERVICE_REQUEST_TOPIC = Topic(
    "https://peerbridge.example.org/fhir/SubscriptionTopic/ServiceRequest",
    "ServiceRequest",
    "ServiceRequest created or changed (PeerBridge referral)",
    ("performer", "requester", "status"),
)
TOPICS: dict[str, Topic] = {t.canonical: t for t in (TASK_TOPIC, SERVICE_REQUEST_TOPIC)}

# Task.code of every PeerBridge Task (Gravity: fulfill the focal request).
TASK_CODE = "fulfill"
_TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"

# The ServiceRequest status each referral status shows (the FHIR door's mapping, as a table
# the domain can hold: filters must read it without the FHIR models).
SERVICE_REQUEST_STATUS: dict[str, str] = {
    "requested": "active",
    "accepted": "active",
    "in-progress": "active",
    "on-hold": "on-hold",
    "completed": "completed",
    "rejected": "revoked",
    "failed": "revoked",
    "cancelled": "revoked",
}


def topic_of(canonical: str) -> Topic:
    topic = TOPICS.get(canonical)
    if topic is None:
        raise Invalid(
            f"unknown topic: this server offers {', '.join(sorted(TOPICS))}",
            field="Subscription.criteria",
        )
    return topic


def parse_filter(topic: Topic, text: str) -> list[tuple[str, str]]:
    """`Task?owner=Organization/x&status=requested` (or without `Task?`) → [(name, value)]."""
    query = text
    prefix, separator, rest = text.partition("?")
    if separator:
        if prefix != topic.resource_type:
            raise Invalid(
                f"filterCriteria must filter {topic.resource_type}", field="filterCriteria"
            )
        query = rest
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, equals, value = part.partition("=")
        if name not in topic.filters or not equals or not value:
            raise Invalid(
                f"filterCriteria takes {', '.join(topic.filters)} as name=value",
                field="filterCriteria",
            )
        pairs.append((name, value))
    return pairs


@dataclass(frozen=True)
class ReferralFacts:
    """What a referral event says, as filters read it (ids, statuses: never PHI)."""

    referral_id: UUID
    requester_organization_id: UUID
    performer_organization_id: UUID
    status: str  # the referral (Task) status the change left


def _value_matches(name: str, wanted: str, topic: Topic, facts: ReferralFacts) -> bool:
    if name in ("owner", "performer"):
        return _reference_matches(wanted, "Organization", facts.performer_organization_id)
    if name == "requester":
        return _reference_matches(wanted, "Organization", facts.requester_organization_id)
    if name == "status":
        status = (
            SERVICE_REQUEST_STATUS.get(facts.status, facts.status)
            if topic is SERVICE_REQUEST_TOPIC
            else facts.status
        )
        return status in wanted.split(",")
    if name == "code":
        return any(
            value in (TASK_CODE, f"{_TASK_CODE_SYSTEM}|{TASK_CODE}", f"|{TASK_CODE}")
            for value in wanted.split(",")
        )
    return False


def _reference_matches(wanted: str, resource_type: str, target: UUID) -> bool:
    for value in wanted.split(","):
        found = value.rpartition("/")
        if found[0] not in ("", resource_type) and not found[0].endswith(f"/{resource_type}"):
            continue
        if found[2] == str(target):
            return True
    return False


def matches(topic: Topic, filters: Sequence[tuple[str, str]], facts: ReferralFacts) -> bool:
    """Whether a referral event passes every filter of a subscription on `topic`."""
    return all(_value_matches(name, value, topic, facts) for name, value in filters)


@dataclass(frozen=True)
class Subscription:
    id: UUID
    organization_id: UUID
    client_id: str
    scopes: str
    topic: str
    filters: tuple[tuple[str, str], ...]
    endpoint: str
    headers: tuple[str, ...]
    content: PayloadContent
    heartbeat_period_s: int | None
    timeout_s: int | None
    status: SubscriptionStatus
    resource: Mapping[str, object]
    events_since_start: int
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    notification_id: UUID
    subscription_id: UUID
    kind: NotificationKind
    event_id: UUID | None
    event_type: str | None
    focus_id: UUID | None
    event_number: int | None
    occurred_at: datetime | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


def backoff_s(
    attempts: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Seconds before the next try after `attempts` failures: exponential, capped, with full
    jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") so receivers that come
    back are not hit by every worker at once."""
    ceiling = min(cap_s, base_s * 2 ** max(attempts - 1, 0))
    return (rng or random).uniform(ceiling / 2, ceiling)


# Networks a notification must not reach unless private endpoints are allowed (SSRF): this
# machine, the private ranges, link-local (cloud metadata at 169.254.169.254) and the like.
def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_endpoint(url: str, *, require_https: bool) -> tuple[str, int]:
    """The endpoint's host and port, or Invalid naming `Subscription.channel.endpoint`."""
    where = "Subscription.channel.endpoint"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("the endpoint is not a URL", field=where) from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Invalid("the endpoint must be an http(s) URL", field=where)
    if require_https and parts.scheme != "https":
        raise Invalid("the endpoint must use https", field=where)
    if parts.username or parts.password:
        raise Invalid("the endpoint must not carry credentials (use channel.header)", field=where)
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_addresses(addresses: Iterable[str]) -> None:
    """Refuse an endpoint any of whose addresses is not public (private, loopback, ...)."""
    found = list(addresses)
    if not found or not all(is_public_address(a) for a in found):
        raise Invalid(
            "the endpoint resolves to a private, loopback or link-local address",
            field="Subscription.channel.endpoint",
        )


def check_header(header: str) -> tuple[str, str]:
    """`Name: value` from channel.header; refused when it is not one."""
    name, colon, value = header.partition(":")
    name = name.strip()
    if (
        not colon
        or not name
        or any(c in name for c in ' \t()<>@,;\\"/[]?={}')
        or any(c in header for c in "\r\n\x00")
    ):
        raise Invalid("each channel.header is 'Name: value'", field="Subscription.channel.header")
    return name, value.strip()


def referral_facts(published: PublishedEvent) -> ReferralFacts | None:
    """What filters read from a referral event; None for events of other records."""
    event = published.event
    status = event.payload.get("status")
    if (
        event.aggregate_type != "Referral"
        or len(event.organization_ids) < 2
        or not isinstance(status, str)
    ):
        return None
    requester, performer = event.organization_ids[0], event.organization_ids[1]
    return ReferralFacts(event.aggregate_id, requester, performer, status)


def fan_out(
    events: Sequence[PublishedEvent], subscriptions: Sequence[Subscription]
) -> list[tuple[Subscription, PublishedEvent]]:
    """Each (subscription, event) to deliver, in event order: the subscription's organization
    is party to the event, and its topic and filters accept it."""
    planned = []
    for published in events:
        facts = referral_facts(published)
        if facts is None:
            continue
        parties = set(published.event.organization_ids)
        for subscription in subscriptions:
            topic = TOPICS.get(subscription.topic)
            if (
                topic is not None
                and subscription.organization_id in parties
                and matches(topic, subscription.filters, facts)
            ):
                planned.append((subscription, published))
    return planned
