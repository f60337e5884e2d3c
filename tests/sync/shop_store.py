"""A synthetic shop (simulators.shops) written into a store through ingest, the way pulls write it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from connectors.base import Page
from connectors.records import EngagementEvent, Order, OrderLine, Profile
from simulators import shops
from sync.ingest import IngestPolicy, write_page
from sync.store import session_scope

AT = datetime(2026, 11, 23, 6, tzinfo=UTC)


def fill_store(engine: Engine, people: int = 220) -> None:
    """A synthetic shop written through ingest, the way pulls write it."""
    shop = shops.generate(people, seed=3).frames()
    policy = IngestPolicy(timedelta(days=1), AT)
    lines = shop.order_lines.groupby("order_id")
    profiles = [
        Profile(source="shop", vendor_id=str(p.person_id), email=p.email, country=p.country,
                timezone=p.timezone, created_at=p.created_at, updated_at=AT)
        for p in shop.people.itertuples()
    ]  # fmt: skip
    orders = [
        Order(source="shop", vendor_id=o.order_id, customer_vendor_id=str(o.person_id),
              email=shop.people.set_index("person_id").at[o.person_id, "email"], ordered_at=o.ordered_at,
              updated_at=AT, currency="EUR", total=o.total, discount_total=o.discount_total,
              lines=_lines(lines, o.order_id))
        for o in shop.orders[shop.orders["cancelled_at"].isna()].itertuples()
    ]  # fmt: skip
    emails = shop.people.set_index("person_id")["email"]
    events = [
        EngagementEvent(source="shop", vendor_id=e.event_id, email=emails[e.person_id], kind=e.kind,
                        occurred_at=e.occurred_at, campaign_id=e.campaign_id)
        for e in shop.events.itertuples()
        if e.kind in ("received", "opened", "clicked")
    ]  # fmt: skip
    with session_scope(engine) as session:
        for stream, records in (("customers", profiles), ("orders", orders), ("events", events)):
            write_page(session, "shop", stream, Page(records, {}), policy)


def _lines(lines: object, order_id: str) -> tuple[OrderLine, ...]:
    if order_id not in lines.groups:  # type: ignore[attr-defined]
        return ()
    return tuple(
        OrderLine(vendor_id=str(ln.line_id), product_id=str(ln.product_id), category=ln.category,
                  quantity=ln.quantity, unit_price=ln.unit_price, discount=ln.discount)
        for ln in lines.get_group(order_id).itertuples()  # type: ignore[attr-defined]
    )  # fmt: skip
