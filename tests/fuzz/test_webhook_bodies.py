"""Hostile Shopify compliance webhook deliveries against the daemon's real HTTP server over loopback.

Random, oversized, non-JSON, non-object and garbage-shaped JSON bodies, each sent with a valid and
with a wrong signature, under every topic and a few bogus ones: a wrong signature is a 401, a bad
body with a good signature is a 400 or 413, nothing is ever a 500, and nobody is deleted (no body
here names a stored customer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from connectors.base import Page
from connectors.records import Profile
from sync.health import DEFAULT_MAX_BODY_BYTES, HealthServer, HealthState
from sync.ingest import IngestPolicy, write_page
from sync.metrics import Metrics
from sync.privacy import erasure_key
from sync.store import migrate, open_engine, row_counts, session_scope
from sync.webhooks import TOPICS, ShopifyComplianceWebhook
from tests.fuzz.hostile import values

SECRET = b"shpss_fuzz_secret"
NOW = datetime(2026, 11, 1, tzinfo=UTC)
PEOPLE = 3

payload_objects = st.fixed_dictionaries(
    {},
    optional={
        "shop_id": values,
        "shop_domain": values,
        "customer": st.one_of(values, st.fixed_dictionaries({}, optional={"id": values, "email": values})),
        "orders_to_redact": values,
        "data_request": st.one_of(values, st.fixed_dictionaries({}, optional={"id": values})),
    },
)


def _json(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
    values.map(_json),
    payload_objects.map(_json),
    st.just(b"{" * (DEFAULT_MAX_BODY_BYTES + 1)),
)


def sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    state = tmp_path_factory.mktemp("webhook-fuzz") / "state"
    engine = open_engine(f"sqlite:///{state / 'espd.sqlite'}")
    migrate(engine)
    people = [
        Profile(source="shop", vendor_id=f"C{i}", email=f"p{i}@example.com", updated_at=NOW)
        for i in range(PEOPLE)
    ]
    with session_scope(engine) as session:
        write_page(session, "shop", "customers", Page(people, {}), IngestPolicy(NOW - NOW, NOW))
    # The webhook is mounted for another shop, so even a valid shop/redact names no stored customer.
    webhook = ShopifyComplianceWebhook("other-shop", [SECRET], engine, erasure_key(state), state)
    server = HealthServer(state=HealthState(), metrics=Metrics(), store_ping=lambda: None, port=0)
    server.add_route("/webhooks/shopify/shop", webhook.__call__, methods=("POST",), public=True)
    with server:
        yield f"{server.url}/webhooks/shopify/shop", engine
    engine.dispose()


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    body=bodies,
    good_signature=st.booleans(),
    topic=st.sampled_from((*TOPICS, "", "orders/create", "Customers/Redact")),
)
def test_hostile_deliveries_are_refused_or_harmless(
    served: tuple[str, Engine], body: bytes, good_signature: bool, topic: str
) -> None:
    url, engine = served
    before = row_counts(engine)
    signature = sign(body) if good_signature else sign(body + b"tampered")
    headers = {"x-shopify-hmac-sha256": signature, "x-shopify-topic": topic.encode("utf-8", "surrogatepass")}
    status = httpx.post(url, content=body, headers=headers, timeout=30).status_code

    oversized = len(body) > DEFAULT_MAX_BODY_BYTES
    if oversized:
        assert status == 413
    elif not good_signature:
        assert status == 401
    else:
        assert status in (200, 400), status
    assert row_counts(engine) == before


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("customers/redact", {"customer": {"email": "not-an-email"}}),
        ("customers/redact", {"customer": {"email": "\ud800@example.com"}}),
        ("customers/data_request", {"customer": {"email": "nobody@example.com"}, "data_request": "x"}),
        ("customers/data_request", {"customer": {"email": "not-an-email"}, "data_request": {"id": 1}}),
    ],
)
def test_a_signed_body_with_garbage_fields_is_refused_or_harmless(
    served: tuple[str, Engine], topic: str, payload: dict[str, object]
) -> None:
    url, engine = served
    before = row_counts(engine)
    body = _json(payload)
    headers = {"x-shopify-hmac-sha256": sign(body), "x-shopify-topic": topic}
    assert httpx.post(url, content=body, headers=headers, timeout=30).status_code in (200, 400)
    assert row_counts(engine) == before
