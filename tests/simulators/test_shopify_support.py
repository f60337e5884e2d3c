"""Shared pieces for the Shopify simulator tests: a hand-built shop with known people and orders, a
fake clock, and a served simulator with a GraphQL helper. The test here checks the fixture itself.

Kept in a `test_shopify_*` module because the simulator's tests own only those files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators import shopify
from simulators.dataset import Order, OrderLine, Person, Product, ShopData
from simulators.harness import Simulator, SimulatorServer
from simulators.shopify.state import CUSTOMER_ID_BASE

AS_OF = datetime(2026, 7, 1, tzinfo=UTC)
CONSENTS = ("subscribed", "unsubscribed", "never_subscribed")


class FakeClock:
    """Monotonic seconds that move only when a test says so (bucket refill, bulk phases, URL expiry)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _person(i: int, platforms: frozenset[str]) -> Person:
    return Person(
        person_id=i,
        email=f"person{i}@example.com",
        first_name=f"First{i}",
        last_name=f"Last{i % 3}",
        country=("US", "GB", "DE")[i % 3],
        timezone="UTC",
        created_at=AS_OF - timedelta(days=400 - i),
        # ties on purpose: people 1-4 share one updated_at
        updated_at=AS_OF - timedelta(days=30) if i <= 4 else AS_OF - timedelta(days=30 - i),
        platforms=platforms,  # type: ignore[arg-type]
        email_consent=CONSENTS[i % 3],  # type: ignore[arg-type]
    )


def _order(n: int, person: int, days_ago: int, lines: int, cancelled: bool = False) -> Order:
    at = AS_OF - timedelta(days=days_ago)
    order_lines = tuple(
        OrderLine(f"L{n}-{j}", f"P{j % 2}", "coffee", quantity=j + 1, unit_price=10.0, discount=1.0)
        for j in range(lines)
    )
    total = sum(line.quantity * line.unit_price - line.discount for line in order_lines)
    return Order(
        order_id=f"O{n}",
        person_id=person,
        ordered_at=at,
        updated_at=at + timedelta(hours=1),
        currency="USD",
        total=total,
        discount_total=float(lines),
        discount_code="SAVE" if n % 2 else None,
        lines=order_lines,
        cancelled_at=at + timedelta(hours=2) if cancelled else None,
    )


def make_shop() -> ShopData:
    """12 people, 10 on Shopify (11 and 12 are Klaviyo-only); orders old (> 60 days) and recent."""
    people = [
        _person(i, frozenset({"shopify", "klaviyo"}) if i <= 10 else frozenset({"klaviyo"}))
        for i in range(1, 13)
    ]
    orders = [
        _order(1, 1, days_ago=200, lines=2),
        _order(2, 1, days_ago=10, lines=3),
        _order(3, 2, days_ago=5, lines=1, cancelled=True),
        _order(4, 3, days_ago=90, lines=1),
        _order(5, 11, days_ago=3, lines=1),  # a Klaviyo-only person: never on Shopify
        *(_order(10 + i, 5, days_ago=20 + i, lines=1) for i in range(6)),
    ]
    products = [Product("P0", "Beans", "coffee", 10.0, 30), Product("P1", "Mug", "home", 10.0, None)]
    return ShopData("test", 1, AS_OF, "USD", people, products, orders, [], [])


def cid(person_id: int) -> int:
    return CUSTOMER_ID_BASE + person_id


def gid(person_id: int) -> str:
    return f"gid://shopify/Customer/{cid(person_id)}"


@dataclass
class Shopify:
    """A served simulator plus a client that posts GraphQL documents to it."""

    sim: Simulator
    server: SimulatorServer
    client: httpx.Client
    clock: FakeClock

    @property
    def url(self) -> str:
        return f"{self.server.url}{self.sim.base_path}/graphql.json"

    def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        headers = {"X-Shopify-Access-Token": token or self.sim.credentials["access_token"]}
        return self.client.post(
            self.url, json={"query": query, "variables": variables or {}}, headers=headers
        )

    def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        response = self.post(query, variables, token)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def serve(clock: FakeClock, **options: Any) -> Iterator[Shopify]:
    sim = shopify.build(make_shop(), clock=clock, **options)
    server = sim.serve()
    try:
        with httpx.Client(timeout=10) as client:
            yield Shopify(sim, server, client, clock)
    finally:
        server.stop()


@pytest.fixture
def api(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock)


def test_shop_fixture_seeds_only_shopify_people_and_their_orders(api: Shopify) -> None:
    state = api.sim.state
    assert sorted(state.customers) == [cid(i) for i in range(1, 11)]
    assert all(o.customer_id != cid(11) for o in state.orders.values())
    assert len(state.orders) == 10
    assert state.customer(cid(1)).number_of_orders == 2
