"""Delivery rules without I/O: backoff, endpoint checks, topic filters."""

from __future__ import annotations

import random
import uuid

import pytest

from api.domain.deliveries import (
    SERVICE_REQUEST_TOPIC,
    TASK_TOPIC,
    ReferralFacts,
    backoff_s,
    check_addresses,
    check_endpoint,
    check_header,
    matches,
    parse_filter,
)
from api.domain.errors import Invalid


def test_backoff_doubles_up_to_the_cap_with_jitter_of_up_to_half() -> None:
    rng = random.Random(7)
    for attempts, ceiling in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)]:
        waits = [backoff_s(attempts, 2.0, 60.0, rng) for _ in range(200)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 100  # jittered, not one value


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(address: str) -> None:
    with pytest.raises(Invalid, match="private"):
        check_addresses([address])


def test_an_endpoint_resolving_to_public_addresses_only_is_allowed() -> None:
    check_addresses(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
    with pytest.raises(Invalid):
        check_addresses(["93.184.215.14", "10.0.0.1"])  # one private address is enough
    with pytest.raises(Invalid):
        check_addresses([])


@pytest.mark.parametrize(
    "url", ["ftp://x.example/", "https://", "https://user:pw@x.example/", "http://[::1/"]
)
def test_an_endpoint_is_an_http_url_without_credentials(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_endpoint(url, require_https=False)
    assert refused.value.details[0].field == "Subscription.channel.endpoint"


def test_production_endpoints_are_https() -> None:
    assert check_endpoint("https://x.example/hook", require_https=True) == ("x.example", 443)
    with pytest.raises(Invalid, match="https"):
        check_endpoint("http://x.example/hook", require_https=True)


@pytest.mark.parametrize("header", ["no colon", "Bad Name: x", "X-A: b\r\nX-B: c", ": empty"])
def test_a_channel_header_is_one_name_value_line(header: str) -> None:
    with pytest.raises(Invalid):
        check_header(header)


def test_task_filters_read_owner_requester_status_and_code() -> None:
    requester, performer = uuid.uuid4(), uuid.uuid4()
    facts = ReferralFacts(uuid.uuid4(), requester, performer, "accepted")
    assert matches(
        TASK_TOPIC, parse_filter(TASK_TOPIC, f"Task?owner=Organization/{performer}"), facts
    )
    assert not matches(
        TASK_TOPIC, parse_filter(TASK_TOPIC, f"owner=Organization/{requester}"), facts
    )
    both = parse_filter(TASK_TOPIC, f"requester=Organization/{requester}&status=requested,accepted")
    assert matches(TASK_TOPIC, both, facts)
    assert matches(TASK_TOPIC, parse_filter(TASK_TOPIC, "code=fulfill"), facts)
    assert not matches(TASK_TOPIC, parse_filter(TASK_TOPIC, "status=completed"), facts)


def test_service_request_status_filters_read_the_service_request_status() -> None:
    facts = ReferralFacts(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), "rejected")
    topic = SERVICE_REQUEST_TOPIC
    assert matches(topic, parse_filter(topic, "ServiceRequest?status=revoked"), facts)
    assert not matches(topic, parse_filter(topic, "status=rejected"), facts)


@pytest.mark.parametrize("text", ["ServiceRequest?owner=x", "Task?unknown=1", "Task?status="])
def test_filters_the_topic_does_not_take_are_refused(text: str) -> None:
    with pytest.raises(Invalid) as refused:
        parse_filter(TASK_TOPIC, text)
    assert refused.value.details[0].field == "filterCriteria"
