"""The optional profile time zone and campaigns frame: validated, kept, and cut at the cutoff."""

from __future__ import annotations

import pandas as pd

from engine.frames import history_at, make_frames

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
