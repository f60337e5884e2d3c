"""Compliance webhook emitter: what Shopify POSTs to an app's `customers/data_request`,
`customers/redact` and `shop/redact` endpoints (notes §4, §9.10).

The body is signed as Shopify does: base64(HMAC-SHA256(app secret, raw body bytes)) in
`X-Shopify-Hmac-Sha256`. `tamper=True` sends a wrong signature, which a correct receiver answers with
401. Non-2xx answers are retried (Shopify: 8 times over 4 hours; here `attempts` times with
`retry_delay` seconds between, so tests stay fast).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")
API_VERSION = "2026-04"


def sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def compliance_payload(
    topic: str, shop_id: int, shop_domain: str, customer: dict[str, Any], orders: list[int]
) -> dict[str, Any]:
    """The documented payload per topic; ids are numeric (legacy), not GIDs."""
    base: dict[str, Any] = {"shop_id": shop_id, "shop_domain": shop_domain}
    if topic == "customers/data_request":
        return {**base, "orders_requested": orders, "customer": customer, "data_request": {"id": 9999}}
    if topic == "customers/redact":
        return {**base, "customer": customer, "orders_to_redact": orders}
    if topic == "shop/redact":
        return base
    raise ValueError(f"unknown compliance topic {topic!r}; expected one of {COMPLIANCE_TOPICS}")


@dataclass
class Delivery:
    topic: str
    webhook_id: str
    body: bytes
    statuses: list[int] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return bool(self.statuses) and 200 <= self.statuses[-1] < 300


def send_compliance_webhooks(
    url: str,
    *,
    secret: str,
    shop_domain: str,
    customer: dict[str, Any],
    orders: list[int] | None = None,
    shop_id: int = 954889,
    topics: tuple[str, ...] = COMPLIANCE_TOPICS,
    tamper: bool = False,
    attempts: int = 9,
    retry_delay: float = 0.0,
    timeout: float = 5.0,
) -> list[Delivery]:
    """POST each topic's payload to `url`; retry non-2xx or failed connections up to `attempts` times."""
    deliveries = []
    with httpx.Client(timeout=timeout) as client:
        for topic in topics:
            payload = compliance_payload(topic, shop_id, shop_domain, customer, orders or [])
            body = json.dumps(payload, separators=(",", ":")).encode()
            delivery = Delivery(topic, str(uuid.uuid4()), body)
            signature = sign(body, secret)
            if tamper:
                signature = sign(body + b" ", secret)
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": signature,
                "X-Shopify-Shop-Domain": shop_domain,
                "X-Shopify-API-Version": API_VERSION,
                "X-Shopify-Webhook-Id": delivery.webhook_id,
                "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            }
            for attempt in range(attempts):
                try:
                    delivery.statuses.append(client.post(url, content=body, headers=headers).status_code)
                except httpx.TransportError:
                    delivery.statuses.append(0)
                if delivery.delivered:
                    break
                if attempt + 1 < attempts:
                    time.sleep(retry_delay)
            deliveries.append(delivery)
    return deliveries
