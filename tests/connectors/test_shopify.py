"""Shopify connector specifics the contract suite does not cover, over real HTTP to the simulator:
declared query costs, orders (line item paging, test and guest orders, money), the bulk backfill,
scopes in check(), bisection of an atomic metafieldsSet, dry runs, and pacing under THROTTLED."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from connectors.base import ConnectorSettings, FieldSpec, FieldType, Page
from connectors.records import FieldUpdate, Order, Profile
from connectors.shopify import ShopifyConnector, documents
from simulators import shopify, shops
from simulators.harness import Limits, LoggedRequest, Simulator, SimulatorServer
from simulators.shopify.state import LineRecord, OrderRecord
from tests.connectors.adapters.shopify import mutation_fields
from tests.simulators.test_shopify_support import AS_OF, cid, gid, make_shop

FIELDS = (
    FieldSpec("espd_churn_risk", FieldType.NUMBER),
    FieldSpec("espd_orders_90d", FieldType.INTEGER),
    FieldSpec("espd_next_order", FieldType.DATE),
    FieldSpec("espd_segment", FieldType.TEXT),
    FieldSpec("espd_vip", FieldType.BOOLEAN),
)


class Served:
    def __init__(self, **options: Any) -> None:
        self.sim: Simulator = shopify.build(make_shop(), keep_bodies=True, **options)
        self.server: SimulatorServer = self.sim.serve()

    def connector(self, streams: Sequence[str] = ("customers", "orders"), **kw: Any) -> ShopifyConnector:
        options = {"bulk_poll_seconds": 0.05, **kw.pop("options", {})}
        settings = ConnectorSettings(
            name="shop",
            base_url=self.server.url,
            credentials={"access_token": SecretStr(self.sim.credentials["access_token"])},
            streams=tuple(streams),
            lookback=timedelta(minutes=15),
            timeout_seconds=10.0,
            options=options,
        )
        return ShopifyConnector(settings, **kw)

    def entries(self) -> list[LoggedRequest]:
        """The request log once the last answer is logged (the server logs just after replying)."""
        deadline = time.monotonic() + 2
        while self.sim.log.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.sim.log.entries()

    def mutations(self) -> list[str]:
        return [name for entry in self.entries() for name in mutation_fields(entry)]


@pytest.fixture
def served() -> Iterator[Served]:
    environment = Served()
    yield environment
    environment.server.stop()


async def _collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [page async for page in pages]


def pull(connector: ShopifyConnector, stream: str, checkpoint: dict | None = None) -> list[Page]:
    async def run() -> list[Page]:
        async with connector:
            chosen = next(s for s in connector.streams() if s.name == stream)
            return await _collect(chosen.read(checkpoint, datetime.now(UTC)))

    return asyncio.run(run())


def test_declared_costs_are_what_shopify_requests(served: Served) -> None:
    """Pacing is only right if each document's declared cost is the server's requestedQueryCost."""
    url = f"{served.server.url}{served.sim.base_path}/graphql.json"
    token = {"X-Shopify-Access-Token": served.sim.credentials["access_token"]}
    variables: dict[str, dict[str, Any]] = {
        "OrderLines": {"id": "gid://shopify/Order/4501001"},
        "BulkPoll": {"id": "gid://shopify/BulkOperation/1"},
    }
    queries = [
        documents.CUSTOMERS,
        documents.ORDERS,
        documents.ORDER_LINES_REST,
        documents.ORDERS_COUNT,
        documents.ACCESS_SCOPES,
        documents.BULK_POLL,
        documents.DEFINITIONS,
    ]
    with httpx.Client() as client:
        for document in queries:
            body = {"query": document.text, "variables": variables.get(document.name, {})}
            answer = client.post(url, json=body, headers=token).json()
            assert "errors" not in answer, (document.name, answer.get("errors"))
            assert answer["extensions"]["cost"]["requestedQueryCost"] == document.cost, document.name
            assert document.cost <= 1000


def _order(sim: Simulator, number: int, *, customer: int | None, lines: int, test: bool = False) -> str:
    state = sim.state
    oid = 4_600_000 + number
    order = OrderRecord(
        id=oid,
        number=9000 + number,
        customer_id=cid(customer) if customer else None,
        email=f"guest{number}@example.com" if customer is None else f"person{customer}@example.com",
        processed_at=AS_OF - timedelta(days=1),
        created_at=AS_OF - timedelta(days=1),
        updated_at=AS_OF - timedelta(hours=1),
        currency="USD",
        total=12.5 * lines,
        discount_total=1.25,
        discount_code="TEN",
        lines=[LineRecord(oid * 100 + i, 1, "coffee", f"SKU{i}", 1, 12.5, 0.25) for i in range(lines)],
        test=test,
    )
    state.add_order(order)
    return order.gid


def test_orders_bring_every_line_drop_test_orders_and_keep_guest_emails(served: Served) -> None:
    long_order = _order(served.sim, 1, customer=2, lines=23)
    guest = _order(served.sim, 2, customer=None, lines=1)
    test_order = _order(served.sim, 3, customer=2, lines=1, test=True)
    pages = pull(served.connector(["orders"]), "orders")
    orders = {r.vendor_id: r for p in pages for r in p.records}
    assert all(isinstance(r, Order) for r in orders.values())
    assert test_order not in orders
    assert len(orders) == len(served.sim.state.orders) - 1
    assert len(orders[long_order].lines) == 23
    assert len({line.vendor_id for line in orders[long_order].lines}) == 23
    assert orders[guest].customer_vendor_id is None and orders[guest].email == "guest2@example.com"
    first = orders[long_order]
    assert (first.total, first.discount_total, first.discount_code) == (287.5, 1.25, "TEN")
    assert first.lines[0].unit_price == 12.5 and first.lines[0].discount == 0.25
    assert first.lines[0].category == "coffee" and first.customer_vendor_id == gid(2)
    lines_calls = [e for e in served.entries() if b"OrderLines" in (e.body or b"")]
    assert len(lines_calls) == 1  # 10 on the page, 13 more in one order(id:) call


def test_first_orders_backfill_of_a_large_shop_is_one_bulk_query(served: Served) -> None:
    paged = {r.vendor_id: r for p in pull(served.connector(["orders"]), "orders") for r in p.records}
    served.sim.log.clear()
    pages = pull(served.connector(["orders"], options={"bulk_threshold": 5}), "orders")
    bulk = {r.vendor_id: r for p in pages for r in p.records}
    assert served.mutations() == ["bulkOperationRunQuery"]
    assert bulk == paged
    watermark = datetime.fromisoformat(pages[-1].checkpoint["watermark"])
    assert watermark == max(o.updated_at for o in served.sim.state.orders.values())
    served.sim.log.clear()
    again = pull(served.connector(["orders"], options={"bulk_threshold": 5}), "orders", pages[-1].checkpoint)
    assert served.mutations() == [] and sum(len(p.records) for p in again) == 0


def test_failed_bulk_falls_back_to_paging(served: Served) -> None:
    served.sim.state.bulk.fail_next = "INTERNAL_SERVER_ERROR"
    pages = pull(served.connector(["orders"], options={"bulk_threshold": 1}), "orders")
    assert served.mutations() == ["bulkOperationRunQuery"]
    assert sum(len(p.records) for p in pages) == len(served.sim.state.orders)


def test_resume_with_a_mid_run_checkpoint_continues_the_same_query(served: Served) -> None:
    """The customers query is paged by 250; shrink the shop's page by resuming from a cursor."""
    first = pull(served.connector(["customers"]), "customers")
    assert len(first) == 1 and first[0].checkpoint["watermark"] is not None
    state = served.sim.state
    for person in (1, 2, 3):
        state.touch_customer(cid(person))
    second = pull(served.connector(["customers"]), "customers", first[0].checkpoint)
    pulled = sorted(r.vendor_id for p in second for r in p.records)
    assert pulled == sorted(gid(p) for p in (1, 2, 3))
    assert all(isinstance(r, Profile) for p in second for r in p.records)


def test_the_saved_watermark_is_capped_at_sync_start_minus_lag(served: Served) -> None:
    async def run() -> Page:
        async with served.connector(["customers"]) as connector:
            stream = connector.streams()[0]
            early = AS_OF - timedelta(days=20)  # as if the sync had started before the newest edits
            return (await _collect(stream.read(None, early)))[-1]

    page = asyncio.run(run())
    assert page.checkpoint["watermark"] == (AS_OF - timedelta(days=20, minutes=15)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def _check(served: Served, **kw: Any) -> Any:
    async def run() -> Any:
        async with served.connector(**kw) as connector:
            return await connector.check()

    return asyncio.run(run())


def test_check_names_missing_scopes_and_warns_about_the_60_day_window() -> None:
    narrow = Served(scopes={"read_customers", "read_orders"})
    try:
        result = _check(narrow)
        assert not result.ok and result.missing_permissions == ("write_customers",)
        result = _check(narrow, options={"push": False})
        assert result.ok and "read_all_orders" in result.message and "60 days" in result.message
    finally:
        narrow.server.stop()
    full = Served()
    try:
        result = _check(full)
        assert result.ok and "60 days" not in result.message
    finally:
        full.server.stop()


def _updates(people: Sequence[int], **values: Any) -> list[FieldUpdate]:
    return [
        FieldUpdate(
            destination="shop",
            customer_vendor_id=gid(p),
            values={
                "espd_churn_risk": 0.125 * p,
                "espd_orders_90d": p,
                "espd_next_order": "2026-12-24T10:00:00+00:00",
                "espd_segment": "at_risk",
                "espd_vip": p % 2 == 0,
                **values,
            },
        )
        for p in people
    ]


def _push(served: Served, updates: list[FieldUpdate], dry_run: bool = False) -> list[Any]:
    async def run() -> list[Any]:
        async with served.connector(dry_run=dry_run) as connector:
            target = connector.push_target()
            assert target is not None
            report = await target.ensure_fields(FIELDS)
            assert set(report.created) | set(report.existing) == {f.name for f in FIELDS}
            return await target.push(updates)

    return asyncio.run(run())


def test_push_types_values_packs_customers_and_isolates_rejected_ones(served: Served) -> None:
    served.sim.faults.reject_records = {gid(3), gid(8)}
    results = _push(served, _updates(range(1, 11)))
    assert [r.ok for r in results] == [p not in (3, 8) for p in range(1, 11)]
    assert "INVALID_VALUE" in (results[2].error or "")
    state = served.sim.state
    assert state.metafield_value(gid(4), "espd", "espd_churn_risk") == "0.5"
    assert state.metafield_value(gid(4), "espd", "espd_orders_90d") == "4"
    assert state.metafield_value(gid(4), "espd", "espd_next_order") == "2026-12-24"
    assert state.metafield_value(gid(4), "espd", "espd_vip") == "true"
    assert state.metafield_value(gid(3), "espd", "espd_segment") is None
    sets = [json.loads(e.body or b"{}") for e in served.entries() if b"MetafieldsSet" in (e.body or b"")]
    assert all(len(s["variables"]["metafields"]) <= 25 for s in sets)
    owners = {len({m["ownerId"] for m in s["variables"]["metafields"]}) for s in sets}
    assert max(owners) == 5  # 5 fields each: 5 customers per call
    assert served.mutations().count("metafieldDefinitionCreate") == len(FIELDS)


def test_bad_values_fail_their_record_only_and_none_removes_the_value(served: Served) -> None:
    _push(served, _updates([1, 2]))
    results = _push(
        served, [*_updates([1], espd_orders_90d=2.5), *_updates([2], espd_segment=None, espd_churn_risk=1e-7)]
    )
    assert not results[0].ok and "integer" in (results[0].error or "")
    assert results[1].ok
    state = served.sim.state
    assert state.metafield_value(gid(2), "espd", "espd_segment") is None
    assert state.metafield_value(gid(2), "espd", "espd_churn_risk") == "0.0000001"
    assert state.metafield_value(gid(1), "espd", "espd_orders_90d") == "1"


def test_definitions_taken_elsewhere_are_confirmed_not_recreated(served: Served) -> None:
    _push(served, [])
    served.sim.log.clear()
    results = _push(served, _updates([5]))
    assert results[0].ok and served.mutations() == ["metafieldsSet"]


def test_dry_run_sends_no_mutation_even_for_a_bulk_backfill(served: Served) -> None:
    results = _push(served, _updates([1, 2, 3]), dry_run=True)
    assert all(r.ok for r in results)
    pages = pull(served.connector(["orders"], dry_run=True, options={"bulk_threshold": 1}), "orders")
    assert sum(len(p.records) for p in pages) == len(served.sim.state.orders)
    assert served.mutations() == []


def test_a_drained_bucket_costs_one_throttled_answer_then_pacing() -> None:
    """Another app drained the shared bucket: espd is throttled once, waits the computed time, then
    paces itself from throttleStatus so no second THROTTLED follows."""
    sim = shopify.build(shops.generate(600, seed=11), limits=Limits(scale=4))  # 8,000 points, 400/s
    server = sim.serve()
    events: list[str] = []
    try:
        url = f"{server.url}{sim.base_path}/graphql.json"
        token = {"X-Shopify-Access-Token": sim.credentials["access_token"]}
        with httpx.Client() as client:
            for _ in range(11):
                client.post(url, json={"query": documents.CUSTOMERS.text}, headers=token)
        settings = ConnectorSettings(
            name="shop",
            base_url=server.url,
            credentials={"access_token": SecretStr(sim.credentials["access_token"])},
            streams=("customers",),
        )
        connector = ShopifyConnector(settings, sink=lambda event, **_: events.append(event))
        pages = pull(connector, "customers")
        assert sum(len(p.records) for p in pages) == len(sim.state.customers)
        assert events.count("rate_limit_wait") == 1
        assert events.count("http_request") == len(pages) + 1
    finally:
        server.stop()
