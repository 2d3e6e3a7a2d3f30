"""FHIR Subscriptions (topic-based, R5 Backport): create, read, list, delete, and what a
notification may show.

A subscription belongs to the caller's organization; only that organization sees or deletes it
(another organization's subscription answers as one that does not exist). Following a referral
topic needs the scope to read referrals too, and what a notification shows is decided when it
is built, by the same rule a read follows (tenancy, consent, audit): a subscription is a
standing read by the client that created it, with the scopes its token held.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from api.domain.deliveries import (
    PayloadContent,
    Subscription,
    SubscriptionStatus,
    check_addresses,
    check_endpoint,
    check_header,
    topic_of,
)
from api.domain.errors import DomainError, Forbidden, Invalid, NotFound
from api.domain.principal import Principal
from api.domain.scopes import parse_scopes
from api.services import referrals
from api.services.policy import Capability, require, utcnow
from api.services.referrals import ReferralView
from api.services.repositories import UnitOfWork
from api.settings import Settings

# Seal the signing secret at rest: (plaintext, context) → sealed bytes, and the key's id.
Seal = Callable[[bytes, bytes], bytes]

_MAX_HEADERS = 10
_MAX_FILTERS = 10
_MAX_TIMEOUT_S = 60
_MAX_HEARTBEAT_S = 30 * 86400
_MAX_ENDPOINT_CHARS = 2048
_MAX_HEADER_CHARS = 4096


@dataclass(frozen=True)
class EndpointPolicy:
    """Where notifications may go: https only and public addresses only, in production."""

    require_https: bool = False
    allow_private: bool = True


def endpoint_policy(settings: Settings) -> EndpointPolicy:
    return EndpointPolicy(
        require_https=settings.is_production,
        allow_private=settings.subscription_private_endpoints_allowed,
    )


@dataclass(frozen=True)
class NewSubscription:
    topic: str
    filters: tuple[tuple[str, str], ...]
    endpoint: str
    headers: tuple[str, ...]
    content: PayloadContent
    heartbeat_period_s: int | None
    timeout_s: int | None
    resource: dict[str, object]  # the Subscription as sent, less what the server owns


async def check_endpoint_allowed(url: str, policy: EndpointPolicy) -> None:
    """Refuse an endpoint the policy forbids; resolves the host unless private ones are
    allowed (SSRF: an endpoint must not reach this machine or the private network)."""
    host, port = check_endpoint(url, require_https=policy.require_https)
    if policy.allow_private:
        return
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Invalid(
            "the endpoint's host does not resolve", field="Subscription.channel.endpoint"
        ) from None
    check_addresses(str(info[4][0]) for info in found)


def _check(command: NewSubscription) -> None:
    topic = topic_of(command.topic)
    if len(command.filters) > _MAX_FILTERS:
        raise Invalid(f"at most {_MAX_FILTERS} filters", field="filterCriteria")
    if any(name not in topic.filters for name, _ in command.filters):
        raise Invalid(f"filterCriteria takes {', '.join(topic.filters)}", field="filterCriteria")
    if len(command.endpoint) > _MAX_ENDPOINT_CHARS:
        raise Invalid(
            f"at most {_MAX_ENDPOINT_CHARS} characters", field="Subscription.channel.endpoint"
        )
    if len(command.headers) > _MAX_HEADERS:
        raise Invalid(f"at most {_MAX_HEADERS} headers", field="Subscription.channel.header")
    for header in command.headers:
        if len(header) > _MAX_HEADER_CHARS:
            raise Invalid(
                f"at most {_MAX_HEADER_CHARS} characters", field="Subscription.channel.header"
            )
        check_header(header)
    if command.timeout_s is not None and not 1 <= command.timeout_s <= _MAX_TIMEOUT_S:
        raise Invalid(f"timeout is 1 to {_MAX_TIMEOUT_S} seconds", field="timeout")
    if command.heartbeat_period_s is not None and not (
        1 <= command.heartbeat_period_s <= _MAX_HEARTBEAT_S
    ):
        raise Invalid(
            f"heartbeatPeriod is 1 to {_MAX_HEARTBEAT_S} seconds", field="heartbeatPeriod"
        )


async def create_subscription(
    uow: UnitOfWork,
    principal: Principal,
    command: NewSubscription,
    policy: EndpointPolicy,
    seal: Seal,
    kek_id: str,
) -> tuple[Subscription, str]:
    """Store the subscription as `requested` (its handshake is queued) and return it with its
    signing secret, which is shown this once and kept only sealed."""
    require(principal, Capability.CREATE_SUBSCRIPTIONS)
    referrals.check_may_follow(principal)
    _check(command)
    await check_endpoint_allowed(command.endpoint, policy)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    subscription = Subscription(
        id=uuid.uuid4(),
        organization_id=principal.organization_id,
        client_id=principal.client_id,
        scopes=" ".join(str(scope) for scope in principal.scopes),
        topic=command.topic,
        filters=command.filters,
        endpoint=command.endpoint,
        headers=command.headers,
        content=command.content,
        heartbeat_period_s=command.heartbeat_period_s,
        timeout_s=command.timeout_s,
        status=SubscriptionStatus.REQUESTED,
        resource=command.resource,
        events_since_start=0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    sealed = seal(secret.encode(), subscription.id.bytes)
    async with uow:
        stored = await uow.subscriptions.add(subscription, sealed, kek_id)
        await uow.commit()
    return stored, secret


async def get_subscription(
    uow: UnitOfWork, principal: Principal, subscription_id: UUID
) -> Subscription:
    require(principal, Capability.READ_SUBSCRIPTIONS)
    async with uow:
        found = await uow.subscriptions.get(subscription_id)
    if found is None or found.organization_id != principal.organization_id:
        raise NotFound("Subscription", str(subscription_id))
    return found


async def list_subscriptions(
    uow: UnitOfWork, principal: Principal, after: UUID | None, limit: int
) -> Sequence[Subscription]:
    require(principal, Capability.READ_SUBSCRIPTIONS)
    async with uow:
        return await uow.subscriptions.of_organization(principal.organization_id, after, limit)


async def delete_subscription(uow: UnitOfWork, principal: Principal, subscription_id: UUID) -> None:
    """Stop it: it and its undelivered notifications are gone."""
    require(principal, Capability.DELETE_SUBSCRIPTIONS)
    async with uow:
        found = await uow.subscriptions.get(subscription_id)
        if found is None or found.organization_id != principal.organization_id:
            raise NotFound("Subscription", str(subscription_id))
        await uow.subscriptions.delete(subscription_id)
        await uow.commit()


def subscriber(subscription: Subscription) -> Principal:
    """Who reads through a subscription: its creating client, with the scopes it held."""
    return Principal(
        client_id=subscription.client_id,
        organization_id=subscription.organization_id,
        scopes=parse_scopes(subscription.scopes.split()),
        subject=f"Subscription/{subscription.id}",
    )


async def notification_referral(
    uow: UnitOfWork, subscription: Subscription, referral_id: UUID
) -> ReferralView | None:
    """The referral as the subscription's organization may see it now (a redacted stub when
    the consent was revoked; audited as its read), or None when it may not see it at all."""
    try:
        return await referrals.get_referral(uow, subscriber(subscription), referral_id)
    except (Forbidden, NotFound):
        return None
    except DomainError:
        return None
