"""A real HTTP receiver on loopback for delivery tests, and what it checks of each request."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fhir_support import Fhir
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.integrations.fhir.resources.subscriptions import (
    EXT_FILTER_CRITERIA,
    EXT_HEARTBEAT_PERIOD,
    EXT_PAYLOAD_CONTENT,
    EXT_SIGNING_SECRET,
    EXT_TIMEOUT,
)


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def bundle(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.raw)
        return value

    @property
    def status(self) -> dict[str, Any]:
        """The SubscriptionStatus parameters by name (notification-event: the first)."""
        parameters = self.bundle["entry"][0]["resource"]["parameter"]
        return {p["name"]: p for p in reversed(parameters)}

    @property
    def kind(self) -> str:
        return str(self.status["type"]["valueCode"])

    @property
    def event_number(self) -> int:
        parts = {p["name"]: p for p in self.status["notification-event"]["part"]}
        return int(parts["event-number"]["valueString"])

    @property
    def focus(self) -> str:
        parts = {p["name"]: p for p in self.status["notification-event"]["part"]}
        return str(parts["focus"]["valueReference"]["reference"])

    def signed_with(self, secret: str) -> bool:
        fields = dict(
            item.split("=", 1) for item in self.headers["x-peerbridge-signature"].split(",")
        )
        expected = hmac.new(
            secret.encode(), f"{fields['t']}.".encode() + self.raw, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, fields["v1"])


@dataclass
class Receiver:
    """Answers `status` (after `delay_s`) and keeps every request it got."""

    url: str = ""
    status: int = 200
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.kind == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout_s: float = 30.0) -> list[Received]:
        for _ in range(int(timeout_s / 0.02)):
            found = self.of_kind(kind)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.of_kind(kind))} {kind} notifications, not {count}")

    async def _hook(self, request: Request) -> Response:
        raw = await request.body()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.received.append(Received(dict(request.headers), raw))
        return Response(status_code=self.status)


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/hook", receiver._hook, methods=["POST"])])
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    port = listening.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        listening.close()


TASK_TOPIC = "http://hl7.org/fhir/us/sdoh-clinicalcare/SubscriptionTopic/Task"


def subscription(
    endpoint: str,
    *,
    content: str = "id-only",
    filters: str | None = None,
    heartbeat_s: int | None = None,
    timeout_s: int | None = None,
    topic: str = TASK_TOPIC,
) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "type": "rest-hook",
        "endpoint": endpoint,
        "payload": "application/fhir+json",
        "_payload": {"extension": [{"url": EXT_PAYLOAD_CONTENT, "valueCode": content}]},
        "header": ["Authorization: Bearer receiver-token"],
    }
    extensions = []
    if heartbeat_s is not None:
        extensions.append({"url": EXT_HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat_s})
    if timeout_s is not None:
        extensions.append({"url": EXT_TIMEOUT, "valueUnsignedInt": timeout_s})
    if extensions:
        channel["extension"] = extensions
    resource: dict[str, Any] = {
        "resourceType": "Subscription",
        "meta": {
            "profile": [
                "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription"
            ]
        },
        "status": "requested",
        "reason": "Referrals for our peer program",
        "criteria": topic,
        "channel": channel,
    }
    if filters:
        resource["_criteria"] = {
            "extension": [{"url": EXT_FILTER_CRITERIA, "valueString": filters}]
        }
    return resource


async def subscribe(fhir: Fhir, resource: dict[str, Any]) -> tuple[dict[str, Any], str]:
    response = await fhir.request("POST", "Subscription", resource)
    assert response.status_code == 201, response.text
    created = response.json()
    (secret,) = [e["valueString"] for e in created["extension"] if e["url"] == EXT_SIGNING_SECRET]
    return created, secret
