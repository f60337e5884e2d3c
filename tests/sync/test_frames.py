"""Store -> engine frames: one order source per customer, cancelled orders left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from connectors.base import Page
from connectors.records import EngagementEvent, EventKind, Order, OrderLine, Profile
from sync.frames import load_frames
from sync.ingest import IngestPolicy, write_page
from sync.store import session_scope

NOW = datetime(2026, 11, 1, tzinfo=UTC)
TYPES = {"shop": "shopify", "kl": "klaviyo"}


def _order(source: str, vid: str, email: str, days_ago: int, total: float, **kw: object) -> Order:
    at = NOW - timedelta(days=days_ago)
    return Order(
        source=source,
        vendor_id=vid,
        email=email,
        ordered_at=at,
        updated_at=at,
        currency="EUR",
        total=total,
        **kw,
    )


def test_frames_count_each_purchase_once(store_engine: Engine) -> None:
    line = OrderLine(
        vendor_id="l1", product_id="p1", category="tea", quantity=2, unit_price=10.0, discount=1.0
    )
    pages = [
        (
            "shop",
            [
                _order("shop", "1", "a@example.com", 10, 19.0, lines=(line,)),
                _order("shop", "2", "a@example.com", 5, 7.0),
            ],
        ),
        ("kl", [_order("kl", "e1", "a@example.com", 10, 19.0), _order("kl", "e2", "b@example.com", 3, 12.0)]),
        ("shop", [_order("shop", "3", "a@example.com", 2, 9.0, cancelled_at=NOW - timedelta(days=1))]),
    ]
    with session_scope(store_engine) as session:
        policy = IngestPolicy(timedelta(days=1), NOW)
        for source, records in pages:
            write_page(session, source, "orders", Page(records, {}), policy)
        write_page(
            session,
            "kl",
            "profiles",
            Page([Profile(source="kl", vendor_id="K", email="c@example.com", updated_at=NOW)], {}),
            policy,
        )
        event = EngagementEvent(
            source="kl", vendor_id="ev", email="b@example.com", kind=EventKind.OPENED, occurred_at=NOW
        )
        write_page(session, "kl", "events", Page([event], {}), policy)

    frames, report = load_frames(store_engine, TYPES)
    by_customer = frames.orders.groupby("customer_id")["order_id"].apply(sorted).to_dict()
    assert sorted(by_customer.values()) == [["kl:e2"], ["shop:1", "shop:2"]]
    assert len(frames.lines) == 1 and frames.lines["price"].iloc[0] == 19.0
    assert len(frames.events) == 1 and frames.events["kind"].iloc[0] == "opened"
    assert len(frames.customers) == 3  # a, b and the profile without orders
    assert frames.orders["ordered_at"].dt.tz is not None
    assert report.summary() == "no rows dropped"
