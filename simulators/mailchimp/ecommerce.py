"""The connected e-commerce store: stores, customers and orders with embedded lines.

As on the real API there is no date filter and no sort on any of these: a client must scan everything
and diff locally on `updated_at_foreign` / `updated_at`. Records are rendered once at seed time (they
only change through test helpers), so a page costs a slice.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from simulators.dataset import Order, Person
from simulators.mailchimp.context import context
from simulators.mailchimp.errors import not_found
from simulators.mailchimp.query import PAGING, bool_param, checked_query, iso, page_of, project

ORDER_FILTERS = PAGING | {"customer_id", "has_outreach", "campaign_id", "outreach_id"}


def customer_id(person: Person) -> str:
    return f"cust-{person.person_id}"


@dataclass
class Store:
    id: str
    list_id: str
    name: str
    currency: str
    created: datetime
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list_id": self.list_id,
            "name": self.name,
            "platform": "espd-sim",
            "domain": "shop.example",
            "is_syncing": False,
            "email_address": "shop@shop.example",
            "currency_code": self.currency,
            "money_format": self.currency,
            "primary_locale": "en",
            "timezone": "UTC",
            "list_is_active": True,
            "created_at": iso(self.created),
            "updated_at": iso(self.created),
            "_links": [],
        }

    def add_customer(self, person: Person, orders: list[Order]) -> None:
        spent = sum(o.total for o in orders if o.cancelled_at is None)
        updated = max([person.updated_at, *(o.updated_at for o in orders)])
        with self.lock:
            self.customers[customer_id(person)] = {
                "id": customer_id(person),
                "email_address": person.email,
                "opt_in_status": person.email_consent == "subscribed",
                "company": "",
                "first_name": person.first_name,
                "last_name": person.last_name,
                "orders_count": len(orders),
                "total_spent": round(spent, 2),
                "address": {"country_code": person.country},
                "created_at": iso(person.created_at),
                "updated_at": iso(updated),
                "_links": [],
            }

    def add_order(self, order: Order, customer: str, titles: dict[str, str], campaign_id: str = "") -> None:
        body: dict[str, Any] = {
            "id": order.order_id,
            "customer": self.customers[customer],
            "store_id": self.id,
            "campaign_id": campaign_id,
            "financial_status": "cancelled" if order.cancelled_at else "paid",
            "fulfillment_status": "shipped",
            "currency_code": order.currency,
            "order_total": order.total,
            "discount_total": order.discount_total,
            "tax_total": 0.0,
            "shipping_total": 0.0,
            "processed_at_foreign": iso(order.ordered_at),
            "updated_at_foreign": iso(order.updated_at),
            "promos": [
                {"code": order.discount_code, "amount_discounted": order.discount_total, "type": "fixed"}
            ]
            if order.discount_code
            else [],
            "lines": [
                {
                    "id": line.line_id,
                    "product_id": line.product_id,
                    "product_title": titles.get(line.product_id, line.product_id),
                    "product_variant_id": line.product_id,
                    "product_variant_title": titles.get(line.product_id, line.product_id),
                    "quantity": line.quantity,
                    "price": line.unit_price,
                    "discount": line.discount,
                    "_links": [],
                }
                for line in order.lines
            ],
            "_links": [],
        }
        if order.cancelled_at:
            body["cancelled_at_foreign"] = iso(order.cancelled_at)
        with self.lock:
            self.orders.append(body)


def _store(request: Request) -> Store:
    store = context(request).store
    if request.path_params.get("store_id") != store.id:
        raise not_found()
    return store


async def list_stores(request: Request) -> Response:
    query = checked_query(request, PAGING)
    stores = [context(request).store.to_json()]
    body = {"stores": list(page_of(query).cut(stores)), "total_items": len(stores), "_links": []}
    return JSONResponse(project(body, query))


async def list_customers(request: Request) -> Response:
    store = _store(request)
    query = checked_query(request, PAGING | {"email_address"})
    page = page_of(query)
    with store.lock:
        customers = list(store.customers.values())
        if query.get("email_address"):
            wanted = query["email_address"].lower()
            customers = [c for c in customers if c["email_address"].lower() == wanted]
        body = {"store_id": store.id, "customers": list(page.cut(customers)), "total_items": len(customers)}
    body["_links"] = []
    return JSONResponse(project(body, query))


def _filtered_orders(store: Store, query: dict[str, str]) -> list[dict[str, Any]]:
    orders = store.orders
    if query.get("customer_id"):
        orders = [o for o in orders if o["customer"]["id"] == query["customer_id"]]
    if query.get("campaign_id"):
        orders = [o for o in orders if o["campaign_id"] == query["campaign_id"]]
    if query.get("outreach_id"):
        orders = []  # no outreach is ever attached to simulated orders
    if bool_param(query, "has_outreach"):
        orders = []
    return orders


async def list_store_orders(request: Request) -> Response:
    store = _store(request)
    query = checked_query(request, ORDER_FILTERS)
    page = page_of(query)
    with store.lock:
        orders = _filtered_orders(store, query)
        body = {
            "store_id": store.id,
            "orders": list(page.cut(orders)),
            "total_items": len(orders),
            "_links": [],
        }
    return JSONResponse(project(body, query))


async def list_all_orders(request: Request) -> Response:
    store = context(request).store
    query = checked_query(request, ORDER_FILTERS)
    page = page_of(query)
    with store.lock:
        orders = _filtered_orders(store, query)
        body = {"orders": list(page.cut(orders)), "total_items": len(orders), "_links": []}
    return JSONResponse(project(body, query))
