"""Shopify compliance webhooks, delivered by the simulator's signed emitter over loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from connectors.base import Page
from connectors.records import Profile
from simulators.shopify.webhooks import send_compliance_webhooks
from sync.health import HealthServer, HealthState
from sync.ingest import IngestPolicy, write_page
from sync.metrics import Metrics
from sync.privacy import erasure_key
from sync.store import row_counts, session_scope
from sync.webhooks import ShopifyComplianceWebhook

SECRET = "shpss_app_client_secret"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def served(store_engine: Engine, tmp_path: Path) -> Iterator[tuple[str, Engine, Path]]:
    state = tmp_path / "state"
    with session_scope(store_engine) as session:
        policy = IngestPolicy(raw_retention=NOW - NOW, now=NOW)
        people = [
            Profile(source="shop", vendor_id=f"C{i}", email=f"p{i}@example.com", updated_at=NOW)
            for i in range(3)
        ]
        write_page(session, "shop", "customers", Page(people, {}), policy)
    webhook = ShopifyComplianceWebhook("shop", [SECRET.encode()], store_engine, erasure_key(state), state)
    server = HealthServer(state=HealthState(), metrics=Metrics(), store_ping=lambda: None, port=0)
    server.add_route("/webhooks/shopify/shop", webhook.__call__, methods=("POST",), public=True)
    with server:
        yield f"{server.url}/webhooks/shopify/shop", store_engine, state


def _send(
    url: str, topics: tuple[str, ...], *, tamper: bool = False, email: str = "p1@example.com"
) -> list[int]:
    deliveries = send_compliance_webhooks(
        url,
        secret=SECRET,
        shop_domain="espd-demo.myshopify.com",
        customer={"id": 1, "email": email, "phone": "555"},
        topics=topics,
        tamper=tamper,
        attempts=1,
    )
    return [d.statuses[-1] for d in deliveries]


def test_bad_signature_is_401_and_deletes_nothing(served: tuple[str, Engine, Path]) -> None:
    url, engine, _ = served
    assert _send(url, ("customers/redact",), tamper=True) == [401]
    assert row_counts(engine)["profiles"] == 3


def test_verified_redact_erases_the_customer(served: tuple[str, Engine, Path]) -> None:
    url, engine, _ = served
    assert _send(url, ("customers/redact",)) == [200]
    counts = row_counts(engine)
    assert counts["profiles"] == 2 and counts["identities"] == 2


def test_data_request_writes_a_private_export(served: tuple[str, Engine, Path]) -> None:
    url, _, state = served
    assert _send(url, ("customers/data_request",)) == [200]
    exports = list((state / "exports").iterdir())
    assert len(exports) == 1 and '"found": true' in exports[0].read_text()
    assert exports[0].stat().st_mode & 0o777 == 0o600


def test_shop_redact_erases_everyone_from_that_shop(served: tuple[str, Engine, Path]) -> None:
    url, engine, _ = served
    assert _send(url, ("shop/redact",)) == [200]
    assert row_counts(engine)["profiles"] == 0
