"""Shopify simulator reads over real HTTP: customers, orders, paging, cursors, search, 60-day window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from simulators.shopify.state import LineRecord, OrderRecord
from tests.simulators.test_shopify_support import AS_OF, FakeClock, Shopify, api, cid, clock, gid, serve

__all__ = ["api", "clock"]  # fixtures used by this module

CUSTOMERS = """query Customers($first: Int, $last: Int, $after: String, $before: String, $q: String,
                         $sort: CustomerSortKeys, $reverse: Boolean) {
  customers(first: $first, last: $last, after: $after, before: $before, query: $q, sortKey: $sort,
            reverse: $reverse) {
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    nodes { id updatedAt numberOfOrders tags email
      amountSpent { amount currencyCode }
      defaultEmailAddress { emailAddress marketingState }
      emailMarketingConsent { marketingState }
      defaultAddress { countryCodeV2 countryCode } }
  }
}"""
ORDERS = """query Orders($q: String, $after: String, $sort: OrderSortKeys) {
  orders(first: 5, after: $after, query: $q, sortKey: $sort) {
    pageInfo { hasNextPage endCursor }
    nodes { id name test processedAt cancelledAt displayFinancialStatus customer { id }
      totalPriceSet { shopMoney { amount currencyCode } }
      totalRefundedSet { shopMoney { amount } }
      refunds(first: 3) { id totalRefundedSet { shopMoney { amount } } }
      lineItems(first: 2) { pageInfo { hasNextPage } nodes { id quantity currentQuantity product { id } } } }
  }
}"""


def customers(api: Shopify, **variables: Any) -> dict[str, Any]:
    body = api.gql(CUSTOMERS, {"first": 100, **variables} if "last" not in variables else variables)
    assert "errors" not in body, body
    return body


def ids(body: dict[str, Any], root: str = "customers") -> list[str]:
    return [n["id"] for n in body["data"][root]["nodes"]]


def all_orders(api: Shopify, query: str | None = None, sort: str | None = None) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"after": after, "q": query, **({"sort": sort} if sort else {})}
        page = api.gql(ORDERS, variables)["data"]["orders"]
        nodes += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


def test_customers_serve_lifetime_totals_consent_and_string_scalars(api: Shopify) -> None:
    nodes = {n["id"]: n for n in customers(api)["data"]["customers"]["nodes"]}
    first = nodes[gid(1)]
    assert first["numberOfOrders"] == "2"  # lifetime: includes the 200-day-old order
    assert first["amountSpent"] == {"amount": "85.00", "currencyCode": "USD"}
    assert first["defaultEmailAddress"] == {
        "emailAddress": "person1@example.com",
        "marketingState": "UNSUBSCRIBED",
    }
    assert first["email"] == "person1@example.com"  # deprecated, still resolves
    assert nodes[gid(3)]["defaultEmailAddress"]["marketingState"] == "SUBSCRIBED"
    assert nodes[gid(2)]["emailMarketingConsent"]["marketingState"] == "NOT_SUBSCRIBED"
    assert nodes[gid(2)]["amountSpent"]["amount"] == "0.00"  # its only order was cancelled
    assert nodes[gid(1)]["defaultAddress"] == {"countryCodeV2": "GB", "countryCode": "GB"}


def test_paging_by_updated_at_is_stable_under_ties_and_cursors_are_opaque(api: Shopify) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = customers(api, first=3, after=after, sort="UPDATED_AT")["data"]["customers"]
        seen += [n["id"] for n in page["nodes"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert str(cid(1)) not in after  # opaque: no raw id in the cursor
    # people 1-4 tie on updated_at; ties break by id, and nothing repeats or goes missing
    assert seen == [gid(i) for i in range(1, 11)]


def test_last_before_and_reverse_walk_backwards(api: Shopify) -> None:
    everything = ids(customers(api))
    tail = customers(api, last=3)["data"]["customers"]
    assert [n["id"] for n in tail["nodes"]] == everything[-3:]
    assert tail["pageInfo"]["hasPreviousPage"] is True
    before = customers(api, last=2, before=tail["pageInfo"]["startCursor"])
    assert ids(before) == everything[-5:-3]
    assert ids(customers(api, reverse=True)) == everything[::-1]


def test_cursor_is_bound_to_query_sort_and_direction(api: Shopify) -> None:
    cursor = customers(api, first=2)["data"]["customers"]["pageInfo"]["endCursor"]
    for other in ({"sort": "UPDATED_AT"}, {"reverse": True}, {"q": "country:US"}):
        body = api.gql(CUSTOMERS, {"first": 2, "after": cursor, **other})
        assert body["errors"][0]["message"] == "Invalid cursor for current pagination sort."
        assert body["data"] is None
    garbage = api.gql(CUSTOMERS, {"first": 2, "after": "not-a-cursor"})
    assert "Invalid cursor" in garbage["errors"][0]["message"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("updated_at:>='2026-06-10T00:00:00Z'", {9, 10}),
        ("updated_at:>'2026-06-10T00:00:00Z'", {10}),
        ("updated_at:<='2026-06-01'", {1, 2, 3, 4}),
        ("updated_at:2026-06-01", {1, 2, 3, 4}),  # a date-only value matches the whole day
        ("country:US tag_not:x", {3, 6, 9}),  # implicit AND
        ("country:US AND orders_count:>0", {3}),
        ("country:DE OR email:person3@example.com", {2, 3, 5, 8}),
        ("NOT country:US", {1, 2, 4, 5, 7, 8, 10}),
        ("-country:US -country:GB", {2, 5, 8}),
        ("(country:US OR country:GB) orders_count:>=2", {1}),
        ("total_spent:>50", {1, 5}),
        ('email:"person7@example.com"', {7}),
    ],
)
def test_search_grammar(api: Shopify, query: str, expected: set[int]) -> None:
    body = customers(api, q=query)
    assert set(ids(body)) == {gid(i) for i in expected}
    assert "search" not in body["extensions"]


def test_unknown_search_field_is_ignored_with_a_warning(api: Shopify) -> None:
    body = customers(api, q="country:US favourite_colour:blue")
    assert set(ids(body)) == {gid(3), gid(6), gid(9)}  # only the known term filtered
    (entry,) = body["extensions"]["search"]
    assert entry["path"] == ["customers"]
    assert entry["warnings"] == [
        {"field": "favourite_colour", "message": "Invalid search field for this query."}
    ]


def test_unquoted_timestamp_is_not_a_filter(api: Shopify) -> None:
    body = customers(api, q="updated_at:>=2026-06-05T00:00:00Z")
    assert len(ids(body)) == 10
    assert body["extensions"]["search"][0]["warnings"][0]["field"] == "updated_at"


def test_orders_default_to_processed_at_and_hide_guest_test_cancelled_nothing(api: Shopify) -> None:
    state = api.sim.state
    guest = OrderRecord(
        id=99,
        number=2001,
        customer_id=None,
        email="guest@example.com",
        processed_at=AS_OF - timedelta(days=1),
        created_at=AS_OF - timedelta(days=1),
        updated_at=AS_OF - timedelta(days=1),
        currency="USD",
        total=20.0,
        discount_total=0.0,
        discount_code=None,
        lines=[LineRecord(9901, 1, "Beans", "P0", 2, 10.0, 0.0)],
        test=True,
    )
    state.add_order(guest)
    state.add_refund(99, 10.0, {9901: 1})
    nodes = all_orders(api)
    processed = [n["processedAt"] for n in nodes]
    assert processed == sorted(processed)
    # without read_all_orders? the default token has it: all 10 seeded + the guest order
    assert len(nodes) == 11
    guest_node = next(n for n in nodes if n["id"] == "gid://shopify/Order/99")
    assert guest_node["customer"] is None and guest_node["test"] is True
    assert guest_node["displayFinancialStatus"] == "PARTIALLY_REFUNDED"
    assert guest_node["refunds"][0]["totalRefundedSet"]["shopMoney"]["amount"] == "10.00"
    assert guest_node["lineItems"]["nodes"][0]["currentQuantity"] == 1
    assert guest_node["lineItems"]["nodes"][0]["quantity"] == 2
    cancelled = [n for n in nodes if n["cancelledAt"]]
    assert len(cancelled) == 1 and cancelled[0]["displayFinancialStatus"] == "VOIDED"
    three_lines = next(n for n in nodes if n["lineItems"]["pageInfo"]["hasNextPage"])
    assert len(three_lines["lineItems"]["nodes"]) == 2
    assert three_lines["totalPriceSet"]["shopMoney"] == {"amount": "57.00", "currencyCode": "USD"}


@pytest.fixture
def recent_only(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, scopes={"read_customers", "read_orders"})


def test_orders_older_than_60_days_do_not_exist_without_read_all_orders(recent_only: Shopify) -> None:
    visible = all_orders(recent_only, "status:any")
    assert len(visible) == 8  # the 200- and 90-day-old orders are gone
    old = recent_only.gql('{ order(id: "gid://shopify/Order/4501001") { id } }')
    assert old["data"]["order"] is None
    nested = recent_only.gql(
        f'{{ customer(id: "{gid(1)}") {{ numberOfOrders orders(first: 5) {{ nodes {{ id }} }} }} }}'
    )
    assert nested["data"]["customer"]["numberOfOrders"] == "2"  # lifetime, unaffected by the window
    assert len(nested["data"]["customer"]["orders"]["nodes"]) == 1


def test_order_search_by_status_and_updated_at(api: Shopify) -> None:
    cancelled = all_orders(api, "status:cancelled")
    assert [n["cancelledAt"] is not None for n in cancelled] == [True]
    recent = all_orders(api, "updated_at:>='2026-06-20T00:00:00Z'", "UPDATED_AT")
    assert [n["name"] for n in recent] == ["#1009", "#1010"]  # the orders of 10 and 5 days ago


def test_node_and_customer_lookups(api: Shopify) -> None:
    body = api.gql(
        f'{{ node(id: "{gid(4)}") {{ id ... on Customer {{ tags }} }} customer(id: "{gid(99)}") {{ id }} }}'
    )
    assert body["data"] == {"node": {"id": gid(4), "tags": []}, "customer": None}


@pytest.fixture
def unprotected(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, protected_data=False)


def test_without_protected_data_approval_email_is_denied_per_field(unprotected: Shopify) -> None:
    body = unprotected.gql("{ customers(first: 2) { nodes { id defaultEmailAddress { emailAddress } } } }")
    assert body["data"]["customers"]["nodes"][0] == {"id": gid(1), "defaultEmailAddress": None}
    assert {e["extensions"]["code"] for e in body["errors"]} == {"ACCESS_DENIED"}
    assert body["errors"][0]["path"] == ["customers", "nodes", 0, "defaultEmailAddress"]
