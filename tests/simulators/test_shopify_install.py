"""The simulator's `currentAppInstallation.accessScopes` and `customersCount`/`ordersCount`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.simulators.test_shopify_support import FakeClock, Shopify, clock, serve

__all__ = ["clock"]  # the fixture, used by `narrow`

SCOPES = "{ currentAppInstallation { accessScopes { handle } } }"
COUNTS = """query($q: String, $limit: Int) {
  customersCount(query: $q, limit: $limit) { count precision }
  ordersCount(limit: $limit) { count precision }
}"""


@pytest.fixture
def narrow(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, scopes={"read_customers", "read_orders"})


def test_access_scopes_list_what_the_token_was_granted(narrow: Shopify) -> None:
    body = narrow.gql(SCOPES)
    handles = [s["handle"] for s in body["data"]["currentAppInstallation"]["accessScopes"]]
    assert handles == ["read_customers", "read_orders"]


def test_counts_are_exact_up_to_the_limit_then_at_least(narrow: Shopify) -> None:
    data = narrow.gql(COUNTS, {"q": "country:US", "limit": None})["data"]
    assert data["customersCount"] == {"count": 3, "precision": "EXACT"}  # people 3, 6 and 9
    assert data["ordersCount"]["precision"] == "EXACT"
    visible = data["ordersCount"]["count"]
    assert 0 < visible < len(narrow.sim.state.orders)  # the 60-day window hides the old orders
    capped = narrow.gql(COUNTS, {"q": None, "limit": 3})["data"]
    assert capped["customersCount"] == {"count": 3, "precision": "AT_LEAST"}
