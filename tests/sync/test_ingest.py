"""Writing pulled pages: identities linked by email, idempotent re-reads, checkpoint in the same commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, select
from sqlmodel import Session

from connectors.base import Page
from connectors.records import Consent, EngagementEvent, EventKind, Order, OrderLine, Profile
from sync import tables
from sync.ingest import IngestPolicy, PageWrite, write_page
from sync.ledger import PushLedger
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


def _pull(engine: Engine, profile: Profile, at: datetime) -> PageWrite:
    policy = IngestPolicy(raw_retention=timedelta(days=30), now=at)
    with session_scope(engine) as session:
        return write_page(session, "klaviyo", "profiles", Page([profile], {"at": at.isoformat()}), policy)


def _profile_id(engine: Engine, vendor_id: str) -> int:
    with Session(engine) as session:
        identity = session.get(tables.Identity, ("klaviyo", vendor_id))
        assert identity is not None and identity.profile_id is not None
        return identity.profile_id


def test_espd_own_pushes_coming_back_write_nothing_but_other_changes_do(store_engine: Engine) -> None:
    """An echo is told apart by the push ledger, whatever the vendor names espd's fields."""
    first = {"ESPD_CHURN": 0.2, "plan": "gold"}
    for vid in ("K1", "K2", "K3"):
        _pull(store_engine, _profile("klaviyo", vid, f"{vid}@example.com", properties=first), NOW)
    with session_scope(store_engine) as session:  # espd pushed to K1 and K3 after that pull
        PushLedger(session, "klaviyo").confirm(
            {_profile_id(store_engine, v): {"espd_churn_risk": 0.7} for v in ("K1", "K3")},
            NOW + timedelta(hours=1),
        )
    later = NOW + timedelta(hours=2)

    def pulled_again(vid: str, **changes: object) -> Profile:
        return _profile(
            "klaviyo", vid, f"{vid}@example.com", properties={**first, "ESPD_CHURN": 0.7}
        ).model_copy(
            update={"updated_at": later, "raw": {"id": vid, "updated": later.isoformat()}, **changes}
        )

    echo = _pull(store_engine, pulled_again("K1"), later)
    assert (echo.written, echo.unchanged) == (0, 1)
    not_ours = _pull(store_engine, pulled_again("K2"), later)  # no push to K2: someone else changed it
    assert (not_ours.written, not_ours.unchanged) == (1, 0)
    unsubscribed = _pull(store_engine, pulled_again("K3", consent=Consent.UNSUBSCRIBED), later)
    assert (unsubscribed.written, unsubscribed.unchanged) == (1, 0)
    with Session(store_engine) as session:
        stored = {i.vendor_id: i for i in session.execute(select(tables.Identity)).scalars()}
    assert stored["K1"].properties == first and stored["K1"].pulled_at == NOW
    assert stored["K2"].properties["ESPD_CHURN"] == 0.7 and stored["K3"].consent == "unsubscribed"
    touched = _pull(store_engine, pulled_again("K1", updated_at=later + timedelta(hours=3)), later)
    assert (touched.written, touched.unchanged) == (0, 1)  # still within the window of espd's push
    pulled_back = _pull(store_engine, pulled_again("K2"), later + timedelta(hours=1))
    assert (pulled_back.written, pulled_back.unchanged) == (1, 0)  # no push to K2: its update time counts


def test_events_of_known_customers_by_email_write_no_profile_rows(store_engine: Engine) -> None:
    """An event brings only an email: a customer already stored is looked up, not rewritten (an
    upsert per email rewrote every known customer once per batch), while a new email is created and
    a profile's missing attribute is still filled in."""
    _write(store_engine, "shop", "customers", Page([_profile("shop", "C1", "ann@example.com")], {}))
    statements: list[str] = []
    record = lambda _c, _cur, sql, *_a: statements.append(sql)  # noqa: E731
    event.listen(store_engine, "before_cursor_execute", record)
    try:
        events = [
            EngagementEvent(
                source="esp", vendor_id=f"E{i}", email=email, kind=EventKind.OPENED, occurred_at=NOW
            )
            for i, email in enumerate(["ann@example.com", "ann@example.com"])
        ]
        _write(store_engine, "esp", "events", Page(events, {}))
        assert not [s for s in statements if s.lstrip().upper().startswith("INSERT INTO PROFILES")]
        new = EngagementEvent(
            source="esp", vendor_id="E9", email="bob@example.com", kind=EventKind.OPENED, occurred_at=NOW
        )
        _write(store_engine, "esp", "events", Page([new], {}))
        _write(
            store_engine,
            "esp",
            "profiles",
            Page([_profile("esp", "P1", "ann@example.com", country="FR")], {}),
        )
    finally:
        event.remove(store_engine, "before_cursor_execute", record)
    with Session(store_engine) as session:
        profiles = {p.email: p for p in session.execute(select(tables.Profile)).scalars()}
        linked = session.execute(select(tables.Event.vendor_id, tables.Event.profile_id)).all()
    assert set(profiles) == {"ann@example.com", "bob@example.com"}
    assert profiles["ann@example.com"].country == "FR"
    assert dict(linked) == {
        "E0": profiles["ann@example.com"].id,
        "E1": profiles["ann@example.com"].id,
        "E9": profiles["bob@example.com"].id,
    }
