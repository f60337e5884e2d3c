"""Shopify simulator strictness: auth, scopes, validation, page sizes, query cost, the bucket, faults."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulators.harness import Faults, Limits
from tests.simulators.test_shopify_support import FakeClock, Shopify, api, clock, serve

__all__ = ["api", "clock"]  # fixtures used by this module

PAGE = "query($n: Int!) { customers(first: $n) { nodes { id amountSpent { amount } } } }"


def test_bad_token_is_http_401_with_string_errors(api: Shopify) -> None:
    response = api.post("{ customers(first: 1) { nodes { id } } }", token="shpat_wrong")
    assert response.status_code == 401
    assert response.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }


def test_unknown_version_is_served_as_the_oldest_supported(api: Shopify) -> None:
    url = api.url.replace("2026-04", "2019-01")
    headers = {"X-Shopify-Access-Token": api.sim.credentials["access_token"]}
    response = api.client.post(
        url, json={"query": "{ customers(first: 1) { nodes { id } } }"}, headers=headers
    )
    assert response.status_code == 200
    assert response.headers["X-Shopify-API-Version"] == "2025-07"
    assert api.post("{ customers(first: 1) { nodes { id } } }").headers["X-Shopify-API-Version"] == "2026-04"


@pytest.fixture
def read_only(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, scopes={"read_customers"})


def test_missing_scope_denies_each_field_with_http_200(read_only: Shopify) -> None:
    body = read_only.gql("{ customers(first: 1) { nodes { id } } orders(first: 1) { nodes { id } } }")
    assert body["data"] is None  # orders is non-null, so the whole data goes null
    (error,) = body["errors"]
    assert error["path"] == ["orders"]
    assert error["extensions"]["code"] == "ACCESS_DENIED"
    assert "`read_orders`" in error["message"]
    write = read_only.gql(
        'mutation { tagsAdd(id: "gid://shopify/Customer/7000001", tags: ["a"]) { userErrors { message } } }'
    )
    assert write["data"] == {"tagsAdd": None}
    assert write["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_validation_errors_carry_locations_path_and_code(api: Shopify) -> None:
    body = api.gql("query Q {\n  customers(first: 1) {\n    nodes { id foo }\n  }\n}")
    (error,) = body["errors"]
    assert error["message"] == "Field 'foo' doesn't exist on type 'Customer'"
    assert error["locations"] == [{"line": 3, "column": 16}]
    assert error["path"] == ["query Q", "customers", "nodes", "foo"]
    assert error["extensions"]["code"] == "undefinedField"
    assert "data" not in body and "cost" in body["extensions"]
    unknown_arg = api.gql("{ customers(first: 1, since: 3) { nodes { id } } }")
    assert unknown_arg["errors"][0]["extensions"]["code"] == "argumentNotAccepted"
    missing = api.gql("{ customer { id } }")
    assert missing["errors"][0]["extensions"]["code"] == "missingRequiredArguments"
    wrong_type = api.gql('{ customers(first: "ten") { nodes { id } } }')
    assert wrong_type["errors"][0]["extensions"]["code"] == "argumentLiteralsIncompatible"
    bad_variable = api.gql(PAGE, {"n": "ten"})
    assert bad_variable["errors"][0]["extensions"]["code"] == "variableMismatch"


def test_connections_need_first_or_last_at_most_250(api: Shopify) -> None:
    missing = api.gql("{ customers { nodes { id } } }")
    assert missing["errors"][0]["message"] == "you must provide one of first or last"
    too_many = api.gql("{ customers(first: 251) { nodes { id } } }")
    assert "must be between 0 and 250" in too_many["errors"][0]["message"]
    nested = api.gql("{ customers(first: 1) { nodes { orders { nodes { id } } } } }")
    assert nested["errors"][0]["path"] == ["customers", "nodes", "orders"]


def test_input_arrays_over_250_are_rejected(api: Shopify) -> None:
    tags = [f"t{i}" for i in range(251)]
    query = (
        'mutation($t: [String!]!) { tagsAdd(id: "gid://shopify/Customer/7000001", tags: $t) { node { id } } }'
    )
    body = api.gql(query, {"t": tags})
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert api.sim.state.customer(7000001).tags == []


def test_requested_cost_follows_the_documented_formula(api: Shopify) -> None:
    q = """{ customers(first: 200) { pageInfo { hasNextPage } nodes { id numberOfOrders
      amountSpent { amount } defaultEmailAddress { emailAddress } defaultAddress { countryCodeV2 } } } }"""
    assert api.gql(q)["extensions"]["cost"]["requestedQueryCost"] == 802  # notes §6 example
    orders = """{ orders(first: 10) { nodes { id customer { id }
      totalPriceSet { shopMoney { amount } } totalRefundedSet { shopMoney { amount } }
      refunds(first: 3) { id totalRefundedSet { shopMoney { amount } } }
      lineItems(first: 10) { nodes { id product { id } variant { id }
        originalUnitPriceSet { shopMoney { amount } }
        discountedUnitPriceSet { shopMoney { amount } } } } } } }"""
    cost = api.gql(orders)["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 10 * (6 + 2 + 3 * 3 + 10 * 7)
    assert cost["actualQueryCost"] < cost["requestedQueryCost"]  # 10 orders with 1-3 lines, no refunds


def test_cost_over_1000_is_max_cost_exceeded(api: Shopify) -> None:
    deep = api.gql(
        "{ customers(first: 250) { nodes { id amountSpent { amount } orders(first: 5) { nodes { id } } } } }"
    )
    (error,) = deep["errors"]
    assert error["extensions"] == {
        "code": "MAX_COST_EXCEEDED",
        "cost": 2 + 250 * (2 + 2 + 5),
        "maxCost": 1000,
    }
    assert deep["extensions"]["cost"]["actualQueryCost"] is None
    assert "data" not in deep


@pytest.fixture
def small_bucket(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, limits=Limits(scale=0.2))  # Standard scaled: 400 points, 20 points/s


def test_bucket_reserves_requested_refunds_actual_and_throttles(small_bucket: Shopify) -> None:
    api = small_bucket
    # 150 customers requested at 2 points each (+2) = 302, but only 10 exist: actual = 2 + 10*2 = 22
    first = api.gql(PAGE, {"n": 150})["extensions"]["cost"]
    assert (first["requestedQueryCost"], first["actualQueryCost"]) == (302, 22)
    assert first["throttleStatus"] == {
        "maximumAvailable": 400.0,
        "currentlyAvailable": 378.0,
        "restoreRate": 20.0,
    }
    throttled = api.gql(PAGE, {"n": 190})  # requests 382 > 378 available
    assert throttled["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/limits#rate-limits",
            },
        }
    ]
    assert throttled["extensions"]["cost"]["actualQueryCost"] is None
    assert throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 378.0
    api.clock.advance(0.2)  # restores 4 points
    assert "errors" not in api.gql(PAGE, {"n": 190})


@pytest.fixture
def unlimited(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, limits=Limits(enabled=False))


def test_disabled_limits_never_throttle_but_still_report_cost(unlimited: Shopify) -> None:
    for _ in range(10):
        body = unlimited.gql(PAGE, {"n": 240})
        assert "errors" not in body and body["extensions"]["cost"]["requestedQueryCost"] == 482


@pytest.fixture
def plus(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, plan="plus", limits=Limits(scale=0.5))


def test_plan_and_scale_choose_restore_rate_and_bucket_size(plus: Shopify) -> None:
    status = plus.gql(PAGE, {"n": 1})["extensions"]["cost"]["throttleStatus"]
    assert (status["maximumAvailable"], status["restoreRate"]) == (10000.0, 500.0)


@pytest.fixture
def faulty(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, faults=Faults(error_burst=2, error_status=503))


def test_injected_5xx_burst_then_recovery(faulty: Shopify) -> None:
    codes = [faulty.post("{ customers(first: 1) { nodes { id } } }").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert faulty.post("{ customers(first: 1) { nodes { id } } }").json()["data"]["customers"]["nodes"]


def test_injected_200_internal_server_error_and_shop_states(api: Shopify) -> None:
    api.sim.state.internal_error_burst = 1
    body = api.gql("{ customers(first: 1) { nodes { id } } }")
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert body["errors"][0]["extensions"]["requestId"]
    assert "data" in api.gql("{ customers(first: 1) { nodes { id } } }")
    for status, message in ((402, "Unavailable Shop"), (423, "This shop is unavailable")):
        api.sim.state.shop_status = status
        response = api.post("{ customers(first: 1) { nodes { id } } }")
        assert (response.status_code, response.json()) == (status, {"errors": message})
    api.sim.state.shop_status = None


@pytest.fixture
def revoked(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, faults=Faults(auth_fail_after=2))


def test_token_revoked_partway_through_a_sync(revoked: Shopify) -> None:
    codes = [revoked.post("{ customers(first: 1) { nodes { id } } }").status_code for _ in range(4)]
    assert codes == [200, 200, 401, 401]
    assert isinstance(revoked.post("{ shop }").json()["errors"], str)


@pytest.fixture
def slow(clock: FakeClock) -> Iterator[Shopify]:
    yield from serve(clock, faults=Faults(hang_seconds=1.0, hang_count=1))


def test_slow_response_trips_a_client_timeout(slow: Shopify) -> None:
    with pytest.raises(httpx.ReadTimeout):
        slow.client.post(
            slow.url,
            json={"query": "{ customers(first: 1) { nodes { id } } }"},
            headers={"X-Shopify-Access-Token": slow.sim.credentials["access_token"]},
            timeout=0.3,
        )
    assert slow.post("{ customers(first: 1) { nodes { id } } }").status_code == 200


def test_request_log_records_every_call(api: Shopify) -> None:
    api.post("{ customers(first: 1) { nodes { id } } }")
    api.post("{ customers(first: 1) { nodes { id } } }", token="bad")
    entries = api.sim.log.entries()
    assert [(e.method, e.status) for e in entries] == [("POST", 200), ("POST", 401)]
    assert entries[0].path == "/admin/api/2026-04/graphql.json"
