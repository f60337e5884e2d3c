"""The optional profile time zone and campaigns frame: validated, kept, and cut at the cutoff."""

from __future__ import annotations

import pandas as pd

from engine.frames import LINE_COLUMNS, ValidationReport, history_at, make_frames, validate_events

ORDERS = pd.DataFrame(
    {
        "customer_id": ["a", "b"],
        "order_id": ["o1", "o2"],
        "ordered_at": ["2024-01-05", "2024-02-05"],
        "amount": [10, 20],
    }
)


def test_customers_keep_a_valid_iana_timezone_and_blank_an_unknown_one() -> None:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "created_at": ["2024-01-01"] * 3,
            "timezone": ["Europe/Berlin", "Mars/Base", None],
        }
    )
    frames, report = make_frames(ORDERS, customers=customers)
    zones = frames.customers.set_index("customer_id")["timezone"]
    assert zones["a"] == "Europe/Berlin"
    assert zones[["b", "c"]].isna().all()
    assert len(frames.customers) == 3  # a bad zone never costs the profile
    assert report.dropped == {"customers: unknown timezone (kept the profile, timezone unknown)": 1}


def test_customers_without_a_timezone_column_get_unknown_zones() -> None:
    frames, report = make_frames(ORDERS, customers=pd.DataFrame({"customer_id": ["a"]}))
    assert frames.customers["timezone"].isna().all() and not report.dropped


def test_campaigns_are_validated_and_cut_at_the_cutoff() -> None:
    campaigns = pd.DataFrame(
        {
            "campaign_id": ["k1", "k2", "k3", "k3", None, "k5"],
            "sent_at": ["2024-01-10", "2024-03-01", "2024-01-20", "2024-01-21", "2024-01-01", "not a time"],
            "discount_offer": [True, "false", 1, 0, True, False],
        }
    )
    frames, report = make_frames(ORDERS, campaigns=campaigns)
    assert list(frames.campaigns["campaign_id"]) == ["k1", "k2", "k3"]
    assert list(frames.campaigns["discount_offer"]) == [True, False, True]
    assert report.dropped == {
        "campaigns: missing campaign_id or unparseable sent_at": 2,
        "campaigns: duplicate campaign_id": 1,
    }
    past = history_at(frames, "2024-02-01").frames.campaigns
    assert list(past["campaign_id"]) == ["k1", "k3"]


def test_frames_without_campaigns_have_an_empty_typed_campaigns_frame() -> None:
    frames, _ = make_frames(ORDERS)
    assert frames.campaigns.empty and list(frames.campaigns.columns) == [
        "campaign_id",
        "sent_at",
        "discount_offer",
    ]
    assert history_at(frames, "2024-03-01").frames.campaigns.empty


def test_ids_and_kinds_are_cleaned_row_by_row_though_computed_per_distinct_value() -> None:
    """Each row gets its own text's cleaning: repeats, blanks, numbers and a shuffled index included."""
    ids = [" a", "a", "a ", None, "  ", 1, 1.0, "a", "b\t", 1]
    kinds = [" Opened", "OPENED", "opened", "clicked", "Clicked ", "x", "x", " ", "received", "x"]
    campaigns = ["c1 ", "c1", None, "", "c2", "c2", "c1", "c1", "c3", "c3"]
    raw = pd.DataFrame(
        {"kind": kinds, "occurred_at": ["2024-01-01"] * len(ids), "campaign_id": campaigns},
        index=[9, 3, 7, 1, 0, 2, 8, 4, 6, 5],
    )
    raw["customer_id"] = pd.Series(ids, index=raw.index, dtype="object")
    report = ValidationReport()
    events = validate_events(raw, report)

    def cleaned(value: object) -> str | None:
        """An id: stripped text, blank is missing."""
        return None if value is None else str(value).strip() or None

    kept = [i for i, c in enumerate(ids) if cleaned(c)]
    assert events["customer_id"].tolist() == [cleaned(ids[i]) for i in kept]
    assert events["kind"].tolist() == [kinds[i].strip().lower() for i in kept]  # a blank kind is kept
    assert events["campaign_id"].fillna("-").tolist() == [cleaned(campaigns[i]) or "-" for i in kept]
    assert events["customer_id"].tolist() == ["a", "a", "a", "1", "1.0", "a", "b", "1"]
    assert events["customer_id"].dtype == "string" and events["kind"].dtype == "string"
    assert report.dropped == {"events: missing customer, kind or time": 2}  # no id, blank id


def test_lines_take_their_orders_customer_and_time_and_unknown_orders_are_dropped() -> None:
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "order_id": ["o3", "o1", "o2"],  # validated orders come sorted by time, not by id
            "ordered_at": ["2024-03-01", "2024-01-01", "2024-02-01"],
            "amount": [30, 10, 20],
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": ["o2", "o9", "o1 ", None, "o3", "o2"],
            "product_id": ["p1", "p2", "p3", "p4", None, "p6"],
            "price": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        },
        index=[5, 4, 3, 2, 1, 0],
    )
    frames, report = make_frames(orders, lines=lines)
    got = frames.lines
    assert got["order_id"].tolist() == ["o2", "o1", "o3", "o2"]
    assert got["customer_id"].tolist() == ["c", "b", "a", "c"]
    days = got["ordered_at"].dt.strftime("%m-%d").tolist()
    assert days == ["02-01", "01-01", "03-01", "02-01"]
    assert got["price"].tolist() == [1.0, 3.0, 5.0, 6.0] and got["product_id"].isna().tolist() == [0, 0, 1, 0]
    assert str(got["customer_id"].dtype) == "string" and str(got["ordered_at"].dtype) == "datetime64[ns, UTC]"
    assert got.columns.tolist() == [*LINE_COLUMNS, "ordered_at"]
    assert report.dropped == {"lines: unknown order_id": 2}  # o9, and the line without an order id


def test_integer_ids_give_the_frames_their_texts_give() -> None:
    """Integer ids (a store's profile ids) are converted once per id, to the text each row would get."""
    orders = ORDERS.assign(customer_id=[7, 12])
    events = pd.DataFrame(
        {"customer_id": [12, 7, 12], "kind": ["opened"] * 3, "occurred_at": ["2024-01-02"] * 3},
        index=[2, 0, 1],
    )
    customers = pd.DataFrame(
        {"customer_id": pd.array([7, None, 12], dtype="Int64"), "created_at": ["2024-01-01"] * 3}
    )
    as_ints, _ = make_frames(orders, events=events, customers=customers)
    as_text, _ = make_frames(
        orders.astype({"customer_id": str}),
        events=events.astype({"customer_id": str}),
        customers=customers.assign(customer_id=["7", None, "12"]),
    )
    for name in ("orders", "events", "customers"):
        pd.testing.assert_frame_equal(getattr(as_ints, name), getattr(as_text, name))
    assert as_ints.events["customer_id"].tolist() == ["12", "7", "12"]
    assert as_ints.customers["customer_id"].tolist() == ["7", "12"]  # the missing id is dropped
