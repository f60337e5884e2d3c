"""Shared pieces for the Klaviyo simulator tests: a hand-built shop with known people, a fake clock, and a
served simulator with an authenticated httpx client. The one test here checks the shop fixture itself.

Kept in a `test_klaviyo_*` module because the simulator's tests own only those files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from simulators import klaviyo
from simulators.dataset import Campaign, EmailEvent, Order, OrderLine, Person, Product, ShopData
from simulators.harness import Faults, Limits, Simulator

REVISION = "2026-07-15"
JSONAPI = "application/vnd.api+json"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """Epoch seconds that only move when a test says so (rate windows, job phases, deletion delays)."""

    def __init__(self, start: float = 1_790_000_000.25) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _person(n: int, platforms: frozenset[str], consent: str = "subscribed") -> Person:
    return Person(
        person_id=n,
        email=f"Person{n}@Example.com",
        first_name=f"First{n}",
        last_name=f"Last{n}",
        country="US",
        timezone="America/New_York",
        created_at=T0 + timedelta(days=n),
        updated_at=T0 + timedelta(days=n, hours=n % 3),
        platforms=platforms,  # type: ignore[arg-type]
        email_consent=consent,  # type: ignore[arg-type]
    )


def make_shop(people: int = 30) -> ShopData:
    """`people` Klaviyo people (every 5th also on Mailchimp), 3 Mailchimp-only people, two campaigns
    (Klaviyo and Mailchimp), one order per Klaviyo person and email events for everyone."""
    klaviyo_people = [
        _person(
            n,
            frozenset({"klaviyo", "mailchimp"} if n % 5 == 0 else {"klaviyo"}),
            "unsubscribed" if n == 2 else "subscribed",
        )
        for n in range(1, people + 1)
    ]
    others = [_person(n, frozenset({"mailchimp"})) for n in range(900, 903)]
    product = Product("P1", "Coffee", "coffee", 12.5, 30)
    orders = [
        Order(
            order_id=f"O{p.person_id}",
            person_id=p.person_id,
            ordered_at=T0 + timedelta(days=40 + p.person_id, seconds=0.5),
            updated_at=T0 + timedelta(days=40 + p.person_id),
            currency="USD",
            total=25.0,
            discount_total=0.0,
            discount_code=None,
            lines=(OrderLine(f"L{p.person_id}", "P1", "coffee", 2, 12.5, 0.0),),
        )
        for p in klaviyo_people + others
    ]
    campaigns = [
        Campaign("CK", "klaviyo", "Spring sale", T0 + timedelta(days=50), True),
        Campaign("CM", "mailchimp", "Mailchimp news", T0 + timedelta(days=51), False),
    ]
    events = [
        EmailEvent(
            f"E{c.campaign_id}{p.person_id}{kind}",
            p.person_id,
            c.campaign_id,
            kind,
            c.sent_at + timedelta(minutes=i),
        )
        for p in klaviyo_people + others
        for c in campaigns
        for i, kind in enumerate(("received", "opened"))
    ]
    return ShopData(
        "hand",
        1,
        T0 + timedelta(days=200),
        "USD",
        klaviyo_people + others,
        [product],
        orders,
        campaigns,
        events,
    )


@dataclass
class Served:
    sim: Simulator
    url: str
    client: httpx.Client
    clock: FakeClock

    @property
    def state(self) -> Any:
        return self.sim.state

    def client_with(self, **headers: str) -> httpx.Client:
        """A client with the default headers overridden ("DROP"-valued ones are left out)."""
        merged = {**dict(self.client.headers), **{name.lower(): value for name, value in headers.items()}}
        return httpx.Client(base_url=self.url, headers={k: v for k, v in merged.items() if v != "DROP"})


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Klaviyo-API-Key {key}", "revision": REVISION, "accept": JSONAPI}


def serve(
    clock: FakeClock,
    shop: ShopData | None = None,
    *,
    limits: Limits | None = None,
    faults: Faults | None = None,
) -> Iterator[Served]:
    sim = klaviyo.build(shop if shop is not None else make_shop(), limits=limits, faults=faults, clock=clock)
    server = sim.serve()
    client = httpx.Client(base_url=server.url, headers=headers(sim.credentials["api_key"]), timeout=10)
    try:
        yield Served(sim, server.url, client, clock)
    finally:
        client.close()
        server.stop()


@pytest.fixture
def served() -> Iterator[Served]:
    yield from serve(FakeClock())


def all_pages(client: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Follow links.next exactly as given, collecting every resource."""
    response = client.get(path, params=params)
    found: list[dict[str, Any]] = []
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["data"]
        if not body["links"].get("next"):
            return found
        response = client.get(body["links"]["next"])


def post(client: httpx.Client, path: str, payload: Any, **kwargs: Any) -> httpx.Response:
    return client.post(path, json=payload, headers={"content-type": JSONAPI}, **kwargs)


def test_hand_built_shop_seeds_only_klaviyo_people_and_campaigns(served: Served) -> None:
    state = served.state
    assert state.profile_count() == 30
    assert state.find_profile(email="person900@example.com") is None  # Mailchimp-only
    received = state.metric("Received Email", "Klaviyo")
    assert len(state.events_of(received.id)) == 30  # Klaviyo campaign only, Klaviyo people only
    assert len(state.events_of(state.metric("Placed Order", "Shopify").id)) == 30
