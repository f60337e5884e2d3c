"""The engagement features that count mail since a buyer's last order, on a hand-built shop.

Two buyers and four campaigns (two with an offer): what is counted must lie after the last order and
before the cutoff, be counted once per campaign, and a buyer who was never mailed gets zeros.
"""

from __future__ import annotations

import pandas as pd
import pytest

from engine.features import FEATURE_COLUMNS, SINCE_ORDER, build_features
from engine.frames import history_at, make_frames

CUTOFF = pd.Timestamp("2024-03-01", tz="UTC")


def _at(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "order_id": ["o1", "o2", "o3"],
            "ordered_at": [_at("2023-06-01"), _at("2024-01-10"), _at("2023-09-01")],
            "amount": [40.0, 55.0, 30.0],
        }
    )
    sends = {"c1": "2024-01-05", "c2": "2024-01-20", "c3": "2024-02-10", "c4": "2024-03-05"}
    campaigns = pd.DataFrame(
        {
            "campaign_id": list(sends),
            "sent_at": [_at(d) for d in sends.values()],
            "discount_offer": [True, True, False, True],
        }
    )
    rows = [("a", "received", c, d) for c, d in sends.items()]  # c1 before, c4 after the cutoff
    rows += [("a", "opened", "c2", "2024-01-21"), ("a", "opened", "c2", "2024-01-22")]  # one campaign
    rows += [("a", "clicked", "c3", "2024-02-11"), ("a", "opened", "c4", "2024-03-06")]
    events = pd.DataFrame(rows, columns=["customer_id", "kind", "campaign_id", "occurred_at"])
    events["occurred_at"] = events["occurred_at"].map(_at)
    frames, report = make_frames(orders=orders, events=events, campaigns=campaigns)
    assert not report.dropped
    return build_features(history_at(frames, CUTOFF))


def test_mail_since_the_last_order_is_counted_once_per_campaign_and_only_before_the_cutoff(
    features: pd.DataFrame,
) -> None:
    a = features.loc["a", list(SINCE_ORDER)].to_dict()
    # c2 and c3 reached "a" after the 2024-01-10 order; c1 came before it, c4 after the cutoff.
    assert a == {
        "received_since_order": 2.0,
        "opened_since_order": 2.0,  # c2 opened twice counts once; a click on c3 implies an open
        "clicked_since_order": 1.0,
        "offers_since_order": 1.0,  # c2 only: c3 had no offer
    }
    assert features.loc["a", "opened_365"] == 2.0
    assert features.loc["a", "open_rate_365"] == pytest.approx(2 / 3)


def test_a_buyer_never_mailed_gets_zeros_not_unknowns(features: pd.DataFrame) -> None:
    assert features.loc["b", list(SINCE_ORDER)].tolist() == [0.0] * len(SINCE_ORDER)
    assert list(features.columns) == list(FEATURE_COLUMNS)
