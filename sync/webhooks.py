"""Shopify's mandatory compliance webhooks, served by the daemon when a webhook secret is configured.

The signature is checked on the raw body before anything parses it: base64 HMAC-SHA256 with the app's
client secret, compared in constant time; a missing or wrong signature is a 401 and nothing happens.
`customers/redact` erases the customer (see sync/privacy.py) and queues the same erasure for every
platform configured with `erase: true` (sync/erasure.py; the daemon's next cycle sends it),
`customers/data_request` writes an export file for the operator to hand over, `shop/redact` erases every
customer that came from that shop (locally only: the shop leaving espd is no reason to delete its
customers elsewhere). Deliveries are deduplicated by `X-Shopify-Webhook-Id` (Shopify retries).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.records import normalize_email
from sync import tables
from sync.erasure import enqueue
from sync.privacy import export, forget, write_private

log = logging.getLogger("espd.webhooks")
TOPICS = ("customers/redact", "customers/data_request", "shop/redact")
SEEN_LIMIT = 10_000


def valid_signature(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """Constant-time check against every accepted secret (the old one stays valid for a while)."""
    if not header:
        return False
    given = header.encode()
    return any(
        hmac.compare_digest(base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest()), given)
        for secret in secrets
    )


class ShopifyComplianceWebhook:
    def __init__(
        self,
        connector: str,
        secrets: Sequence[bytes],
        engine: Engine,
        erasure_key: bytes,
        state_dir: Path,
        erase_to: Callable[[], Sequence[str]] = lambda: (),
    ) -> None:
        self.connector = connector
        self.erase_to = erase_to
        self.secrets = list(secrets)
        self.engine = engine
        self.erasure_key = erasure_key
        self.exports = state_dir / "exports"
        self._seen: dict[str, None] = {}

    async def __call__(self, request: Request) -> Response:
        body = await request.body()
        if not valid_signature(body, request.headers.get("x-shopify-hmac-sha256"), self.secrets):
            log.warning("event=webhook_rejected connector=%s reason=bad_signature", self.connector)
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        topic = request.headers.get("x-shopify-topic", "")
        if topic not in TOPICS:
            return JSONResponse({"error": f"unexpected topic {topic!r}"}, status_code=400)
        delivery = request.headers.get("x-shopify-webhook-id", "")
        if delivery and delivery in self._seen:
            return JSONResponse({"status": "duplicate"})
        try:
            payload = json.loads(body)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        if (problem := _payload_problem(payload)) is not None:
            log.warning("event=webhook_rejected connector=%s reason=bad_payload", self.connector)
            return JSONResponse({"error": problem}, status_code=400)
        await asyncio.to_thread(self._handle, topic, payload)
        if delivery:
            self._seen[delivery] = None
            while len(self._seen) > SEEN_LIMIT:
                self._seen.pop(next(iter(self._seen)))
        log.info("event=webhook_handled connector=%s topic=%s", self.connector, topic)
        return JSONResponse({"status": "ok"})

    def _handle(self, topic: str, payload: dict) -> None:
        customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
        email = customer.get("email") if isinstance(customer.get("email"), str) else None
        if topic == "customers/redact" and email:
            enqueue(self.engine, self.erasure_key, email, self.erase_to(), reason=topic)
            forget(self.engine, self.erasure_key, email, reason=topic)
        elif topic == "customers/data_request" and email:
            self.exports.mkdir(parents=True, exist_ok=True, mode=0o700)
            request_id = str((payload.get("data_request") or {}).get("id", "unknown"))
            path = self.exports / f"shopify-data-request-{_safe(request_id)}.json"
            write_private(path, json.dumps(export(self.engine, email), indent=2, default=str))
        elif topic == "shop/redact":
            for email in self._emails_from_this_shop():
                forget(self.engine, self.erasure_key, email, reason=topic)

    def _emails_from_this_shop(self) -> list[str]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(tables.Identity.email).where(
                    tables.Identity.source == self.connector, tables.Identity.email.is_not(None)
                )
            )
            return [email for email in rows.scalars() if email]


def _payload_problem(payload: dict) -> str | None:
    """Why a signed body is unusable (a 400, not a 500): an email that is not one, a non-object request."""
    customer = payload.get("customer")
    email = customer.get("email") if isinstance(customer, dict) else None
    if isinstance(email, str) and email:
        try:
            normalize_email(email).encode()  # a lone surrogate cannot be hashed or stored
        except ValueError:
            return "customer.email is not an email address"
    if not isinstance(payload.get("data_request") or {}, dict):
        return "data_request is not an object"
    return None


def _safe(value: str) -> str:
    return "".join(c for c in value if c.isalnum() or c in "-_")[:64] or "unknown"
