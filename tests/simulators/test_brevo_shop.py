"""A hand-built shop with known content for the Brevo simulator tests, the helpers those tests share,
and the tests that seeding serves only what Brevo would know of the shop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators.brevo import build
from simulators.dataset import Campaign, EmailEvent, Order, OrderLine, Person, Platform, ShopData
from simulators.harness import Faults, JobClock, Limits, Simulator, SimulatorServer
from tests.support.spec_conformance import assert_conforms, register_patch

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BREVO_PEOPLE = 6  # people 1..6 are on brevo; 7 and 8 are not


def _patch_spec(spec: dict[str, Any]) -> None:
    """Repairs of the Brevo spec, applied before openapi-core reads it."""
    _string_status_keys(spec)
    _add_orders_schema(spec)


def _string_status_keys(spec: dict[str, Any]) -> None:
    """YAML reads `200:` as an integer key; OpenAPI requires strings (openapi-core refuses ints).
    Brevo also writes "no body" (204, 201) as `content: {}`, which openapi-core reads as "a body is
    required": drop the empty map so an empty answer validates and a non-empty one still fails."""
    for operations in spec["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = {str(k): v for k, v in operation["responses"].items()}
                for response in operation["responses"].values():
                    if response.get("content") == {}:
                        del response["content"]


def _add_orders_schema(spec: dict[str, Any]) -> None:
    """The OpenAPI 3 file dropped `GET /orders`'s response schema (only an example is left); the
    older swagger.yaml defines it as `getOrders` = {orders: [order + contact_id], count}. Restore it
    so order pages are validated instead of passing unchecked."""
    spec["components"]["schemas"]["getOrders"] = {
        "type": "object",
        "properties": {
            "orders": {
                "type": "array",
                "items": {
                    "allOf": [
                        {
                            "type": "object",
                            "properties": {"contact_id": {"type": "integer", "format": "int64"}},
                        },
                        {"$ref": "#/components/schemas/order"},
                    ]
                },
            },
            "count": {"type": "integer", "format": "int64"},
        },
    }
    content = spec["paths"]["/orders"]["get"]["responses"]["200"]["content"]["application/json"]
    content["schema"] = {"$ref": "#/components/schemas/getOrders"}


register_patch("brevo", _patch_spec)


def _person(pid: int, consent: str, platforms: tuple[Platform, ...]) -> Person:
    return Person(
        person_id=pid,
        email=f"person{pid}@shop.example",
        first_name=f"First{pid}",
        last_name=f"Last{pid}",
        country="FR",
        timezone="Europe/Paris",
        created_at=T0 + timedelta(days=pid),
        updated_at=T0 + timedelta(days=10 + pid, milliseconds=pid * 7),
        platforms=frozenset(platforms),
        email_consent=consent,  # type: ignore[arg-type]
    )


def _order(oid: int, pid: int, day: int, cancelled: bool = False) -> Order:
    at = T0 + timedelta(days=day)
    line = OrderLine(f"L{oid}", f"P{oid % 3}", "coffee", 2, 12.5, 0.0)
    return Order(
        f"O{oid}",
        pid,
        at,
        at + timedelta(hours=5),
        "EUR",
        25.0,
        0.0,
        "SAVE10" if oid % 2 else None,
        (line,),
        at + timedelta(days=1) if cancelled else None,
    )


def make_shop() -> ShopData:
    consents = ["subscribed", "unsubscribed", "never_subscribed", "subscribed", "subscribed", "subscribed"]
    people = [_person(i + 1, c, ("brevo", "shopify")) for i, c in enumerate(consents)]
    people += [_person(7, "subscribed", ("klaviyo",)), _person(8, "subscribed", ("shopify", "mailchimp"))]
    campaigns = [
        Campaign("b-1", "brevo", "Spring sale", T0 + timedelta(days=20), True),
        Campaign("b-2", "brevo", "Newsletter", T0 + timedelta(days=40), False),
        Campaign("k-1", "klaviyo", "Klaviyo only", T0 + timedelta(days=30), False),
    ]
    events = [
        EmailEvent("e1", 1, "b-1", "received", T0 + timedelta(days=20)),
        EmailEvent("e2", 1, "b-1", "opened", T0 + timedelta(days=20, hours=2)),
        EmailEvent("e3", 1, "b-1", "opened", T0 + timedelta(days=21)),
        EmailEvent("e4", 1, "b-1", "clicked", T0 + timedelta(days=21, minutes=1), "https://shop.example/p/1"),
        EmailEvent("e5", 1, "b-2", "received", T0 + timedelta(days=40)),
        EmailEvent("e6", 2, "b-1", "received", T0 + timedelta(days=20)),
        EmailEvent("e7", 2, "b-1", "unsubscribed", T0 + timedelta(days=20, hours=1)),
        EmailEvent("e8", 4, "b-1", "received", T0 + timedelta(days=20)),
        EmailEvent("e9", 4, "b-1", "bounced", T0 + timedelta(days=20)),
        EmailEvent("e10", 7, "k-1", "received", T0 + timedelta(days=30)),
        EmailEvent("e11", 7, "b-1", "opened", T0 + timedelta(days=30)),  # person not on brevo
    ]
    orders = [
        _order(1, 1, 15),
        _order(2, 1, 25, cancelled=True),
        _order(3, 3, 18),
        _order(4, 7, 16),
        _order(5, 8, 17),
    ]
    return ShopData("brevo-test", 1, T0 + timedelta(days=60), "EUR", people, [], orders, campaigns, events)


@dataclass
class FakeClock:
    """Monotonic seconds that only move when a test says so (rate limits, job phases)."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Brevo:
    """A running simulator plus an authenticated client on its base path."""

    sim: Simulator
    server: SimulatorServer
    client: httpx.Client
    clock: FakeClock
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> Any:
        return self.sim.state

    def get(self, path: str, conform: bool = True, **params: Any) -> httpx.Response:
        response = self.client.get(path, params=params)
        if conform:
            assert_conforms("brevo", response)
        return response

    def send(
        self, method: str, path: str, body: Any = None, conform: bool = True, **params: Any
    ) -> httpx.Response:
        response = self.client.request(method, path, json=body, params=params)
        if conform:
            assert_conforms("brevo", response)
        return response


def start(
    shop: ShopData | None = None,
    *,
    limits: Limits | None = None,
    faults: Faults | None = None,
    **options: Any,
) -> Brevo:
    clock = FakeClock()
    options.setdefault("job_clock", JobClock(queued_seconds=5, processing_seconds=5))
    sim = build(shop, limits=limits or Limits(enabled=False), faults=faults, clock=clock, **options)
    server = sim.serve()
    client = httpx.Client(
        base_url=server.url + sim.base_path, headers={"api-key": sim.credentials["api_key"]}, timeout=10
    )
    return Brevo(sim, server, client, clock)


def running(shop: ShopData | None = None, **kwargs: Any) -> Iterator[Brevo]:
    brevo = start(shop, **kwargs)
    try:
        yield brevo
    finally:
        brevo.client.close()
        brevo.server.stop()


@pytest.fixture
def brevo() -> Iterator[Brevo]:
    yield from running(make_shop())


def test_seed_serves_only_people_on_brevo_with_consent_as_blacklist(brevo: Brevo) -> None:
    response = brevo.get("/contacts", sort="asc", limit=10)
    contacts = response.json()["contacts"]
    assert [c["email"] for c in contacts] == [f"person{i}@shop.example" for i in range(1, BREVO_PEOPLE + 1)]
    assert response.json()["count"] == BREVO_PEOPLE
    by_email = {c["email"]: c for c in contacts}
    assert by_email["person2@shop.example"]["emailBlacklisted"] is True
    assert by_email["person1@shop.example"]["emailBlacklisted"] is False
    assert by_email["person3@shop.example"]["listIds"] == [3]  # never subscribed, but a customer
    assert by_email["person1@shop.example"]["listIds"] == [2, 3]
    assert by_email["person1@shop.example"]["attributes"] == {"FIRSTNAME": "First1", "LASTNAME": "Last1"}


def test_seed_orders_and_campaigns_stay_on_brevo(brevo: Brevo) -> None:
    orders = brevo.get("/orders", sort="asc").json()
    assert [o["id"] for o in orders["orders"]] == ["O1", "O3", "O2"]  # creation order; people 7, 8 absent
    assert orders["orders"][2]["status"] == "cancelled"
    assert orders["orders"][0]["coupons"] == ["SAVE10"]
    campaigns = brevo.get("/emailCampaigns", sort="asc").json()
    assert [c["name"] for c in campaigns["campaigns"]] == ["Spring sale", "Newsletter"]
    stats = campaigns["campaigns"][0]["statistics"]["globalStats"]
    # person 7's open of b-1 is not Brevo's to know; person 4 bounced.
    assert (stats["sent"], stats["delivered"], stats["viewed"], stats["uniqueViews"]) == (3, 2, 2, 1)
    assert (stats["uniqueClicks"], stats["unsubscriptions"], stats["hardBounces"]) == (1, 1, 1)
    assert campaigns["campaigns"][0]["statistics"]["linksStats"] == {"https://shop.example/p/1": 1}
