"""The compliance webhook emitter: signed bodies, the three payloads, retries, tampered signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from simulators.harness import SimulatorServer
from simulators.shopify import APP_SECRET, SHOP_DOMAIN
from simulators.shopify.webhooks import COMPLIANCE_TOPICS, send_compliance_webhooks


class Receiver:
    """A minimal espd-like endpoint: verifies the HMAC over the raw body, fails the first N calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[str, dict]] = []

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        expected = base64.b64encode(hmac.new(APP_SECRET.encode(), raw, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, request.headers.get("X-Shopify-Hmac-Sha256", "").encode()):
            return Response(status_code=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            return Response(status_code=500)
        self.received.append((request.headers["X-Shopify-Topic"], json.loads(raw)))
        return Response(status_code=200)


def serve_receiver(receiver: Receiver) -> Iterator[str]:
    server = SimulatorServer(
        Starlette(routes=[Route("/webhooks", receiver.handle, methods=["POST"])])
    ).start()
    try:
        yield f"{server.url}/webhooks"
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver(fail_first=2)


@pytest.fixture
def url(receiver: Receiver) -> Iterator[str]:
    yield from serve_receiver(receiver)


CUSTOMER = {"id": 7000001, "email": "person1@example.com", "phone": None}


def test_sends_the_three_signed_payloads_and_retries_failures(url: str, receiver: Receiver) -> None:
    deliveries = send_compliance_webhooks(
        url, secret=APP_SECRET, shop_domain=SHOP_DOMAIN, customer=CUSTOMER, orders=[4501001]
    )
    assert [d.topic for d in deliveries] == list(COMPLIANCE_TOPICS)
    assert deliveries[0].statuses == [500, 500, 200]  # retried on non-2xx
    assert all(d.delivered for d in deliveries)
    payloads = dict(receiver.received)
    assert payloads["customers/data_request"]["orders_requested"] == [4501001]
    assert payloads["customers/redact"]["customer"]["id"] == 7000001
    assert payloads["shop/redact"] == {"shop_id": 954889, "shop_domain": SHOP_DOMAIN}


def test_tampered_signature_is_refused_with_401(url: str, receiver: Receiver) -> None:
    deliveries = send_compliance_webhooks(
        url, secret=APP_SECRET, shop_domain=SHOP_DOMAIN, customer=CUSTOMER, tamper=True, attempts=2
    )
    assert [d.statuses for d in deliveries] == [[401, 401]] * 3
    assert receiver.received == []
