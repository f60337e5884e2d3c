"""The simulated shop's in-memory store: customers, orders, metafields, definitions, bulk operations.

Seeded only from what Shopify would know: the people on Shopify and their orders. Tests read back what
a client wrote (`metafield_value`, `customer(...).tags`) and mutate data (`touch_customer`,
`add_order`, `delete_customer`) to exercise incremental pulls. Timestamps come from `now()`, which is
the shop's `as_of` advanced by the injectable clock, so writes always look newer than the seed data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from simulators.dataset import ShopData
from simulators.shopify.bulk import BulkStore

CUSTOMER_ID_BASE = 7_000_000
ORDER_ID_BASE = 4_500_000
APP_ID = 1234567
ORDER_WINDOW = timedelta(days=60)


@dataclass
class CustomerRecord:
    id: int
    first_name: str
    last_name: str
    email: str
    consent: str  # ShopData consent: subscribed / unsubscribed / never_subscribed
    country: str
    created_at: datetime
    updated_at: datetime
    tags: list[str] = field(default_factory=list)
    note: str | None = None
    amount_spent: float = 0.0
    number_of_orders: int = 0

    @property
    def gid(self) -> str:
        return f"gid://shopify/Customer/{self.id}"


@dataclass
class LineRecord:
    id: int
    product_id: int
    title: str
    sku: str
    quantity: int
    unit_price: float
    discount: float  # total discount on the line
    refunded_quantity: int = 0


@dataclass
class RefundRecord:
    id: int
    created_at: datetime
    amount: float
    note: str | None = None


@dataclass
class OrderRecord:
    id: int
    number: int
    customer_id: int | None  # None = guest checkout
    email: str | None
    processed_at: datetime
    created_at: datetime
    updated_at: datetime
    currency: str
    total: float
    discount_total: float
    discount_code: str | None
    lines: list[LineRecord]
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    test: bool = False
    refunds: list[RefundRecord] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    @property
    def gid(self) -> str:
        return f"gid://shopify/Order/{self.id}"

    @property
    def refunded(self) -> float:
        return round(sum(r.amount for r in self.refunds), 2)


@dataclass
class MetafieldRecord:
    id: int
    owner_gid: str
    namespace: str
    key: str
    value: str
    type: str
    created_at: datetime
    updated_at: datetime


@dataclass
class DefinitionRecord:
    id: int
    name: str
    namespace: str
    key: str
    type: str
    owner_type: str
    description: str | None
    pinned_position: int | None


class ShopifyState:
    """Thread-safe store. uvicorn serves from one thread, tests mutate from another: hold `lock`."""

    def __init__(
        self,
        shop: ShopData | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        shop_domain: str = "espd-demo.myshopify.com",
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.shop_domain = shop_domain
        self.currency = shop.currency if shop else "USD"
        self._epoch = clock()
        self._as_of = shop.as_of if shop else datetime(2026, 7, 1, tzinfo=UTC)
        self.customers: dict[int, CustomerRecord] = {}
        self.orders: dict[int, OrderRecord] = {}
        self.products: dict[int, tuple[str, str]] = {}  # id -> (title, category)
        self.metafields: dict[str, dict[tuple[str, str], MetafieldRecord]] = {}  # owner gid -> (ns, key)
        self.customer_orders: dict[int, list[int]] = {}
        self.index_cache: dict[tuple[str, str], tuple[int, object]] = {}
        self.definitions: dict[int, DefinitionRecord] = {}
        self.version = 0  # bumped on every write; sort indexes rebuild when it changes
        self._next_id = 90_000_000
        self.deleted_customers: list[int] = []
        self.tokens: dict[str, frozenset[str]] = {}  # access token -> granted scopes
        self.internal_error_burst = 0  # answer the next N requests with 200 + INTERNAL_SERVER_ERROR
        self.shop_status: int | None = None  # 402 (frozen, unpaid) or 423 (locked) for every request
        self.bulk = BulkStore(clock)
        if shop is not None:
            self._seed(shop)

    # ---- time and ids -------------------------------------------------------------------------
    def now(self) -> datetime:
        """The shop's wall clock: `as_of` plus the seconds the injected clock advanced."""
        elapsed = int(self.clock() - self._epoch)  # Shopify timestamps have whole seconds
        return self._as_of.replace(microsecond=0) + timedelta(seconds=elapsed)

    def next_id(self) -> int:
        with self.lock:
            self._next_id += 1
            return self._next_id

    def changed(self) -> None:
        self.version += 1

    # ---- seeding ------------------------------------------------------------------------------
    def _seed(self, shop: ShopData) -> None:
        for person in shop.people_on("shopify"):
            cid = CUSTOMER_ID_BASE + person.person_id
            self.customers[cid] = CustomerRecord(
                id=cid,
                first_name=person.first_name,
                last_name=person.last_name,
                email=person.email,
                consent=person.email_consent,
                country=person.country,
                created_at=person.created_at,
                updated_at=person.updated_at,
            )
        product_ids = {p.product_id: i + 1 for i, p in enumerate(shop.products)}
        self.products = {product_ids[p.product_id]: (p.title, p.category) for p in shop.products}
        ours = (o for o in shop.orders if CUSTOMER_ID_BASE + o.person_id in self.customers)
        for number, order in enumerate(sorted(ours, key=lambda o: (o.ordered_at, o.order_id)), start=1001):
            oid = ORDER_ID_BASE + number
            lines = [
                LineRecord(
                    id=oid * 100 + i,
                    product_id=product_ids.get(line.product_id, 0),
                    title=line.category,
                    sku=line.product_id,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    discount=line.discount,
                )
                for i, line in enumerate(order.lines)
            ]
            customer = self.customers[CUSTOMER_ID_BASE + order.person_id]
            self.customer_orders.setdefault(customer.id, []).append(oid)
            self.orders[oid] = OrderRecord(
                id=oid,
                number=number,
                customer_id=customer.id,
                email=customer.email,
                processed_at=order.ordered_at,
                created_at=order.ordered_at,
                updated_at=order.updated_at,
                currency=order.currency,
                total=order.total,
                discount_total=order.discount_total,
                discount_code=order.discount_code,
                lines=lines,
                cancelled_at=order.cancelled_at,
                cancel_reason="CUSTOMER" if order.cancelled_at else None,
            )
        self._recount(self.customers)

    def _recount(self, customer_ids: Iterable[int]) -> None:
        """Lifetime `numberOfOrders`/`amountSpent`: every non-test order, not only the 60-day window."""
        for cid in customer_ids:
            placed = [o for o in self.orders_of(cid) if not o.test]
            spent = sum(o.total - o.refunded for o in placed if o.cancelled_at is None)
            self.customers[cid].number_of_orders = len(placed)
            self.customers[cid].amount_spent = round(spent, 2)

    # ---- reads --------------------------------------------------------------------------------
    def customer(self, customer_id: int) -> CustomerRecord | None:
        return self.customers.get(customer_id)

    def order_visible(self, order: OrderRecord, all_orders: bool) -> bool:
        """Without `read_all_orders`, orders older than 60 days silently do not exist."""
        return all_orders or order.created_at >= self.now() - ORDER_WINDOW

    def metafield_value(self, owner_gid: str, namespace: str, key: str) -> str | None:
        """Test helper: the stored value, with `$app:` namespaces resolved as the server does."""
        record = self.metafields.get(owner_gid, {}).get((resolve_namespace(namespace), key))
        return record.value if record else None

    def metafields_of(self, owner_gid: str) -> list[MetafieldRecord]:
        return sorted(self.metafields.get(owner_gid, {}).values(), key=lambda m: m.id)

    def orders_of(self, customer_id: int) -> list[OrderRecord]:
        return [self.orders[oid] for oid in self.customer_orders.get(customer_id, ())]

    def definition_for(self, owner_type: str, namespace: str, key: str) -> DefinitionRecord | None:
        for definition in self.definitions.values():
            if (definition.owner_type, definition.namespace, definition.key) == (owner_type, namespace, key):
                return definition
        return None

    # ---- writes used by tests to simulate merchant activity -----------------------------------
    def touch_customer(self, customer_id: int) -> None:
        with self.lock:
            self.customers[customer_id].updated_at = self.now()
            self.changed()

    def delete_customer(self, customer_id: int) -> None:
        with self.lock:
            del self.customers[customer_id]
            self.deleted_customers.append(customer_id)
            self.changed()

    def add_order(self, order: OrderRecord) -> OrderRecord:
        """Add an order (guest, test, cancelled, refunded: anything the real shop can hold)."""
        with self.lock:
            self.orders[order.id] = order
            if order.customer_id is not None:
                self.customer_orders.setdefault(order.customer_id, []).append(order.id)
                self._recount([order.customer_id])
            self.changed()
            return order

    def add_refund(self, order_id: int, amount: float, refunded_units: dict[int, int] | None = None) -> None:
        with self.lock:
            order = self.orders[order_id]
            order.refunds.append(RefundRecord(id=self.next_id(), created_at=self.now(), amount=amount))
            for line in order.lines:
                line.refunded_quantity += (refunded_units or {}).get(line.id, 0)
            order.updated_at = self.now()
            if order.customer_id is not None:
                self._recount([order.customer_id])
            self.changed()


def resolve_namespace(namespace: str | None) -> str:
    """`$app:espd` is stored and read back as `app--<appId>--espd`; omitted means the app's own."""
    if namespace is None or namespace == "$app":
        return f"app--{APP_ID}"
    if namespace.startswith("$app:"):
        return f"app--{APP_ID}--{namespace[len('$app:') :]}"
    return namespace
