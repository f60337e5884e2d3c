"""Shopify simulator bulk queries: rules, concurrency, lifecycle, JSONL with __parentId, expiry, failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.simulators.test_shopify_support import FakeClock, Shopify, api, clock, gid, serve

__all__ = ["api", "clock"]  # fixtures used by this module

RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
  bulkOperation { id status } userErrors { field message code } } }"""
POLL = """query($id: ID!) { bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount
  fileSize url partialDataUrl completedAt } }"""
ORDERS_EXPORT = """{ orders(query: "status:any") { edges { node { id updatedAt customer { id }
  totalPriceSet { shopMoney { amount } }
  lineItems { edges { node { id quantity product { id } } } } } } } }"""


def start(api: Shopify, query: str) -> dict[str, Any]:
    return api.gql(RUN, {"q": query})["data"]["bulkOperationRunQuery"]


def poll(api: Shopify, op_id: str) -> dict[str, Any]:
    return api.gql(POLL, {"id": op_id})["data"]["bulkOperation"]


def test_bulk_export_moves_through_its_lifecycle_and_serves_jsonl(api: Shopify) -> None:
    started = start(api, ORDERS_EXPORT)
    assert started["userErrors"] == []
    op_id = started["bulkOperation"]["id"]
    assert started["bulkOperation"]["status"] == "CREATED"
    api.clock.advance(0.1)
    assert poll(api, op_id)["status"] == "RUNNING"
    api.clock.advance(1)
    done = poll(api, op_id)
    assert done["status"] == "COMPLETED" and done["errorCode"] is None
    rows = [json.loads(line) for line in api.client.get(done["url"]).text.splitlines()]
    orders = [r for r in rows if "__parentId" not in r]
    lines = [r for r in rows if "__parentId" in r]
    assert len(orders) == 10 and int(done["rootObjectCount"]) == 10
    assert int(done["objectCount"]) == len(rows) == 10 + 2 + 3 + 1 + 1 + 6
    assert {r["__parentId"] for r in lines} <= {o["id"] for o in orders}
    assert all("lineItems" not in o for o in orders)
    assert orders[0]["totalPriceSet"]["shopMoney"]["amount"].count(".") == 1
    assert int(done["fileSize"]) == len(api.client.get(done["url"]).content)
    via_node = api.gql(f'{{ node(id: "{op_id}") {{ ... on BulkOperation {{ status }} }} }}')
    assert via_node["data"]["node"] == {"status": "COMPLETED"}


def test_bulk_url_expires(api: Shopify) -> None:
    op_id = start(api, ORDERS_EXPORT)["bulkOperation"]["id"]
    api.clock.advance(1)
    url = poll(api, op_id)["url"]
    assert api.client.get(url).status_code == 200
    api.clock.advance(7 * 24 * 3600 + 1)
    expired = api.client.get(url)
    assert expired.status_code == 403 and "ExpiredToken" in expired.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ customers(first: 1) { nodes { id } } orders { edges { node { id } } } }",
            "exactly one top-level",
        ),
        ('{ customer(id: "gid://shopify/Customer/7000001") { id } }', "at least one connection"),
        (
            "{ customers { edges { node { id orders { edges { node {"
            " lineItems { edges { node { id } } } } } } } } } }",
            "nested",
        ),
        ("{ customers { edges { node { id nope } } } }", "Invalid bulk query"),
        ("{ customers { edges { node { id ", "Invalid bulk query"),
    ],
)
def test_bulk_query_rules(api: Shopify, query: str, message: str) -> None:
    result = start(api, query)
    assert result["bulkOperation"] is None
    (error,) = result["userErrors"]
    assert error["code"] == "INVALID" and message in error["message"] and error["field"] == ["query"]


def test_more_than_five_connections_is_invalid(api: Shopify) -> None:
    inner = " ".join(f"m{i}: metafields {{ edges {{ node {{ id }} }} }}" for i in range(5))
    result = start(api, f"{{ customers {{ edges {{ node {{ id {inner} }} }} }} }}")
    assert "more than 5 connections" in result["userErrors"][0]["message"]


def test_one_bulk_query_at_a_time(api: Shopify) -> None:
    first = start(api, ORDERS_EXPORT)
    second = start(api, ORDERS_EXPORT)
    assert second["bulkOperation"] is None
    assert second["userErrors"][0]["code"] == "OPERATION_IN_PROGRESS"
    api.clock.advance(1)
    assert poll(api, first["bulkOperation"]["id"])["status"] == "COMPLETED"
    assert start(api, ORDERS_EXPORT)["userErrors"] == []


@pytest.fixture
def five_at_once(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, bulk_concurrency=5)


def test_with_a_limit_of_five_the_sixth_is_limit_reached(five_at_once: Shopify) -> None:
    results = [start(five_at_once, ORDERS_EXPORT) for _ in range(6)]
    assert [r["userErrors"] == [] for r in results] == [True] * 5 + [False]
    assert results[-1]["userErrors"][0]["code"] == "LIMIT_REACHED"


def test_injected_failure_leaves_partial_data(api: Shopify) -> None:
    api.sim.state.bulk.fail_next = "TIMEOUT"
    op_id = start(api, "{ customers { edges { node { id updatedAt } } } }")["bulkOperation"]["id"]
    api.clock.advance(1)
    failed = poll(api, op_id)
    assert (failed["status"], failed["errorCode"], failed["url"]) == ("FAILED", "TIMEOUT", None)
    rows = api.client.get(failed["partialDataUrl"]).text.splitlines()
    assert len(rows) == 5 and json.loads(rows[0])["id"] == gid(1)


@pytest.fixture
def no_orders_scope(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, scopes={"read_customers"})


def test_bulk_query_without_scope_fails_with_access_denied(no_orders_scope: Shopify) -> None:
    op_id = start(no_orders_scope, ORDERS_EXPORT)["bulkOperation"]["id"]
    no_orders_scope.clock.advance(1)
    failed = poll(no_orders_scope, op_id)
    assert (failed["status"], failed["errorCode"]) == ("FAILED", "ACCESS_DENIED")
