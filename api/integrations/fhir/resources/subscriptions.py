"""Subscription (R4 + Subscriptions R5 Backport IG 1.1.0) ↔ PeerBridge, and notification Bundles.

A Subscription is kept as sent; PeerBridge owns its id, meta and status. Its parts:
criteria = a topic canonical, the `backport-filter-criteria` extension on criteria,
channel.type rest-hook, channel.endpoint, channel.header, channel.payload (application/fhir+json)
with the `backport-payload-content` extension, and the channel's `backport-heartbeat-period` and
`backport-timeout` extensions. Notifications are `history` Bundles whose first entry is the
SubscriptionStatus Parameters (IG profiles backport-subscription-notification-r4 and
backport-subscription-status-r4).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from api.domain.deliveries import (
    TOPICS,
    NotificationKind,
    PayloadContent,
    Subscription,
    parse_filter,
    topic_of,
)
from api.domain.errors import Invalid
from api.integrations.fhir.resources.codes import ext
from api.integrations.fhir.resources.datatypes import Json, instant
from api.services.subscriptions import NewSubscription

IG = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition"
PROFILE_SUBSCRIPTION = f"{IG}/backport-subscription"
PROFILE_NOTIFICATION = f"{IG}/backport-subscription-notification-r4"
PROFILE_STATUS = f"{IG}/backport-subscription-status-r4"
EXT_FILTER_CRITERIA = f"{IG}/backport-filter-criteria"
EXT_PAYLOAD_CONTENT = f"{IG}/backport-payload-content"
EXT_HEARTBEAT_PERIOD = f"{IG}/backport-heartbeat-period"
EXT_TIMEOUT = f"{IG}/backport-timeout"
EXT_TOPIC_CANONICAL = f"{IG}/capabilitystatement-subscriptiontopic-canonical"
STATUS_OPERATION = (
    "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
)
# Shown once, in the answer to the create: the key of the notifications' signature header.
EXT_SIGNING_SECRET = ext("subscription-signing-secret")
SIGNATURE_HEADER = "X-PeerBridge-Signature"
_FHIR_JSON = "application/fhir+json"
# Elements PeerBridge owns: whatever the client sent there is replaced.
_OWNED = ("id", "meta", "status", "error")


def _extensions(element: Mapping[str, Any] | None, url: str) -> list[Mapping[str, Any]]:
    return [e for e in (element or {}).get("extension", ()) if e.get("url") == url]


def _one_value(element: Mapping[str, Any] | None, url: str, key: str, where: str) -> Any:
    found = _extensions(element, url)
    if len(found) > 1:
        raise Invalid(f"at most one {url.rsplit('/', 1)[-1]} extension", field=where)
    if found and key not in found[0]:
        raise Invalid(f"{url.rsplit('/', 1)[-1]} takes {key}", field=where)
    return found[0][key] if found else None


def from_fhir_subscription(resource: Mapping[str, Any]) -> NewSubscription:
    """The create command from a Subscription; Invalid naming the element otherwise."""
    criteria = resource.get("criteria")
    if not isinstance(criteria, str):
        raise Invalid("criteria is the topic's canonical URL", field="Subscription.criteria")
    topic = topic_of(criteria)
    criteria_element = resource.get("_criteria")
    filters: list[tuple[str, str]] = []
    for extension in _extensions(criteria_element, EXT_FILTER_CRITERIA):
        text = extension.get("valueString")
        if not isinstance(text, str):
            raise Invalid("filterCriteria is a valueString", field="Subscription.criteria")
        filters.extend(parse_filter(topic, text))
    channel = resource.get("channel") or {}
    if (channel.get("type") or "") != "rest-hook":
        raise Invalid("only rest-hook channels are offered", field="Subscription.channel.type")
    endpoint = channel.get("endpoint")
    if not isinstance(endpoint, str):
        raise Invalid("a rest-hook needs an endpoint", field="Subscription.channel.endpoint")
    payload_element = channel.get("_payload")
    payload = channel.get("payload")
    if payload is not None and payload != _FHIR_JSON:
        raise Invalid(f"payload is {_FHIR_JSON}", field="Subscription.channel.payload")
    content_code = _one_value(
        payload_element, EXT_PAYLOAD_CONTENT, "valueCode", "Subscription.channel.payload"
    )
    if payload is None:
        content = PayloadContent.EMPTY
    else:
        try:
            content = PayloadContent(content_code or PayloadContent.ID_ONLY.value)
        except ValueError:
            raise Invalid(
                "payload content is empty, id-only or full-resource",
                field="Subscription.channel.payload",
            ) from None
    heartbeat = _one_value(
        channel, EXT_HEARTBEAT_PERIOD, "valueUnsignedInt", "Subscription.channel"
    )
    timeout = _one_value(channel, EXT_TIMEOUT, "valueUnsignedInt", "Subscription.channel")
    return NewSubscription(
        topic=topic.canonical,
        filters=tuple(filters),
        endpoint=endpoint,
        headers=tuple(channel.get("header") or ()),
        content=content,
        heartbeat_period_s=heartbeat,
        timeout_s=timeout,
        resource={k: v for k, v in resource.items() if k not in _OWNED},
    )


def to_fhir_subscription(subscription: Subscription, secret: str | None = None) -> Json:
    """The Subscription as sent, with PeerBridge's id, meta and status (and, in the answer to
    its create only, the signing secret)."""
    resource: Json = {
        "resourceType": "Subscription",
        "id": str(subscription.id),
        "meta": {
            "versionId": str(subscription.version),
            "lastUpdated": instant(subscription.updated_at),
            "profile": [PROFILE_SUBSCRIPTION],
        },
        **{k: v for k, v in subscription.resource.items() if k not in ("resourceType",)},
        "status": subscription.status.value,
    }
    if secret is not None:
        resource["extension"] = [
            *resource.get("extension", ()),
            {"url": EXT_SIGNING_SECRET, "valueString": secret},
        ]
    return resource


@dataclass(frozen=True)
class NotificationEvent:
    number: int
    occurred_at: datetime
    focus_id: UUID
    created: bool  # the event created its focus (POST) rather than changed it (PUT)


def status_parameters(
    base_url: str,
    subscription: Subscription,
    kind: NotificationKind,
    events: tuple[NotificationEvent, ...] = (),
) -> Json:
    """The SubscriptionStatus (backport-subscription-status-r4) of one notification."""
    topic = TOPICS[subscription.topic]
    parameters: list[Json] = [
        {
            "name": "subscription",
            "valueReference": {"reference": f"{base_url}/Subscription/{subscription.id}"},
        }
    ]
    if subscription.content is not PayloadContent.EMPTY:
        parameters.append({"name": "topic", "valueCanonical": topic.canonical})
    parameters += [
        {"name": "status", "valueCode": subscription.status.value},
        {"name": "type", "valueCode": kind.value},
        {
            "name": "events-since-subscription-start",
            "valueString": str(subscription.events_since_start),
        },
    ]
    for event in events:
        parts: list[Json] = [
            {"name": "event-number", "valueString": str(event.number)},
            {"name": "timestamp", "valueInstant": instant(event.occurred_at)},
        ]
        if subscription.content is not PayloadContent.EMPTY:
            parts.append(
                {
                    "name": "focus",
                    "valueReference": {
                        "reference": f"{base_url}/{topic.resource_type}/{event.focus_id}"
                    },
                }
            )
        parameters.append({"name": "notification-event", "part": parts})
    return {
        "resourceType": "Parameters",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [PROFILE_STATUS]},
        "parameter": parameters,
    }


def notification_bundle(
    base_url: str,
    subscription: Subscription,
    kind: NotificationKind,
    *,
    notification_id: UUID,
    timestamp: datetime,
    event: NotificationEvent | None = None,
    focus: Json | None = None,
) -> Json:
    """A notification (history Bundle, SubscriptionStatus first). `notification_id` is the
    Bundle's id, the same on every retry: receivers deduplicate on it. `focus`: the resource
    itself, for a full-resource payload the subscriber may see."""
    status = status_parameters(base_url, subscription, kind, (event,) if event else ())
    entries: list[Json] = [
        {
            "fullUrl": f"urn:uuid:{status['id']}",
            "resource": status,
            "request": {
                "method": "GET",
                "url": f"{base_url}/Subscription/{subscription.id}/$status",
            },
            "response": {"status": "200"},
        }
    ]
    if event is not None and focus is not None:
        resource_type = focus["resourceType"]
        entries.append(
            {
                "fullUrl": f"{base_url}/{resource_type}/{focus['id']}",
                "resource": focus,
                "request": {
                    "method": "POST" if event.created else "PUT",
                    "url": resource_type if event.created else f"{resource_type}/{focus['id']}",
                },
                "response": {"status": "201" if event.created else "200"},
            }
        )
    return {
        "resourceType": "Bundle",
        "id": str(notification_id),
        "meta": {"profile": [PROFILE_NOTIFICATION]},
        "type": "history",
        "timestamp": instant(timestamp),
        "entry": entries,
    }


SUBSCRIPTION_DOCUMENTATION = (
    "Topic-based subscriptions (Subscriptions R5 Backport IG 1.1.0, R4): criteria is a topic "
    "canonical advertised here; filterCriteria on criteria narrows it (Task topic: owner, "
    "requester, status, code; ServiceRequest topic: performer, requester, status). channel: "
    "rest-hook only, with channel.header sent on every notification, payload "
    "application/fhir+json with content empty, id-only (the default) or full-resource, "
    "heartbeatPeriod and timeout (1-60 s). The create answers with the signing secret (the "
    f"{EXT_SIGNING_SECRET} extension), shown only then: each notification carries "
    f"'{SIGNATURE_HEADER}: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">'. The "
    "subscription is requested until its handshake is answered with 2xx, then active "
    "(error when every try failed). A subscription belongs to the caller's organization and "
    "shows what that organization may see when each notification is built: a full-resource "
    "payload is the read the creating client would get (a redacted stub after a consent is "
    "revoked; no resource when nothing may be seen). Search lists your organization's "
    "subscriptions (_count only); $status answers with the SubscriptionStatus."
)


def subscription_capability() -> Json:
    """What the CapabilityStatement adds to its Subscription entry: each topic's canonical
    (IG 1.1.0 extension), the backport profile and the $status operation."""
    return {
        "extension": [{"url": EXT_TOPIC_CANONICAL, "valueCanonical": t} for t in TOPICS],
        "supportedProfile": [PROFILE_SUBSCRIPTION],
        "operation": [{"name": "status", "definition": STATUS_OPERATION}],
    }
