"""Writing pulled pages: identities linked by email, idempotent re-reads, checkpoint in the same commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from connectors.base import Page
from connectors.records import Consent, EngagementEvent, EventKind, Order, OrderLine, Profile
from sync import tables
from sync.ingest import IngestPolicy, write_page
from sync.store import row_counts, session_scope

NOW = datetime(2026, 11, 1, tzinfo=UTC)
POLICY = IngestPolicy(raw_retention=timedelta(days=30), now=NOW)


def _profile(source: str, vid: str, email: str | None, **kw: object) -> Profile:
    return Profile(source=source, vendor_id=vid, email=email, updated_at=NOW, raw={"id": vid}, **kw)


def _write(engine: Engine, connector: str, stream: str, page: Page) -> None:
    with session_scope(engine) as session:
        write_page(session, connector, stream, page, POLICY)


def test_same_email_on_two_platforms_is_one_customer(store_engine: Engine) -> None:
    _write(
        engine := store_engine,
        "klaviyo",
        "profiles",
        Page([_profile("klaviyo", "K1", "Ann@Example.com ")], {"w": 1}),
    )
    _write(
        engine,
        "shop",
        "customers",
        Page(
            [
                _profile(
                    "shop",
                    "gid://shopify/Customer/9",
                    "ann@example.com",
                    country="FR",
                    consent=Consent.SUBSCRIBED,
                )
            ],
            {},
        ),
    )
    with Session(engine) as session:
        identities = session.execute(select(tables.Identity)).scalars().all()
        profiles = session.execute(select(tables.Profile)).scalars().all()
    assert len(profiles) == 1 and profiles[0].email == "ann@example.com" and profiles[0].country == "FR"
    assert {i.source for i in identities} == {"klaviyo", "shop"}
    assert {i.profile_id for i in identities} == {profiles[0].id}


def test_customer_without_email_gets_its_own_profile_once(store_engine: Engine) -> None:
    page = Page([_profile("shop", "gid://shopify/Customer/1", None, timezone="Europe/Paris")], {"at": "x"})
    _write(store_engine, "shop", "customers", page)
    _write(store_engine, "shop", "customers", page)
    counts = row_counts(store_engine)
    assert counts["profiles"] == 1 and counts["identities"] == 1


def test_orders_and_events_find_their_customer_and_rereads_are_harmless(store_engine: Engine) -> None:
    _write(store_engine, "shop", "customers", Page([_profile("shop", "C1", None)], {}))
    order = Order(
        source="shop",
        vendor_id="O1",
        customer_vendor_id="C1",
        ordered_at=NOW - timedelta(days=3),
        updated_at=NOW,
        currency="eur",
        total=30.0,
        lines=(OrderLine(vendor_id="L1", product_id="P1", category="tea", quantity=2, unit_price=15.0),),
    )
    guest = order.model_copy(
        update={"vendor_id": "O2", "customer_vendor_id": None, "email": "guest@example.com"}
    )
    event = EngagementEvent(
        source="klaviyo", vendor_id="E1", email="guest@example.com", kind=EventKind.OPENED, occurred_at=NOW
    )
    for _ in range(2):  # a crash after the first commit re-reads the same page
        _write(store_engine, "shop", "orders", Page([order, guest, order], {"updated_at": "2026-11-01"}))
        _write(store_engine, "klaviyo", "events", Page([event], {"datetime": "2026-11-01"}))
    with Session(store_engine) as session:
        orders = {o.vendor_id: o for o in session.execute(select(tables.Order)).scalars()}
        guest_profile = session.execute(
            select(tables.Profile).where(tables.Profile.email == "guest@example.com")
        ).scalar_one()
        stored_event = session.execute(select(tables.Event)).scalar_one()
        cursor = session.get(tables.SyncState, ("shop", "orders"))
        owner = session.get(tables.Identity, ("shop", "C1"))
    assert orders["O1"].profile_id == owner.profile_id and orders["O1"].currency == "EUR"
    assert orders["O2"].profile_id == guest_profile.id == stored_event.profile_id
    assert row_counts(store_engine)["order_lines"] == 2  # one line in each of O1 and O2
    assert cursor is not None and cursor.cursor == {"updated_at": "2026-11-01"}


def test_a_page_and_its_checkpoint_commit_together(store_engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(store_engine) as session:
        write_page(session, "k", "profiles", Page([_profile("k", "1", "a@example.com")], {"w": 2}), POLICY)
        raise RuntimeError("killed before commit")
    with Session(store_engine) as session:
        assert session.get(tables.SyncState, ("k", "profiles")) is None
    assert row_counts(store_engine)["identities"] == 0
