"""Discount sensitivity: shrunk evidence from discounted orders and from responses to offers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from engine.discount import OUTPUT_COLUMNS, discount_sensitivity
from engine.frames import FrameError, history_at, make_frames
from simulators.shops import generate_with_truth
from tests.support.shop_frames import shop_frames

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def _shop(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """People with a true sensitivity: it drives code use and buying after an opened offer."""
    rng = np.random.default_rng(seed)
    n = 300
    sensitivity = pd.Series(rng.beta(1.5, 4.0, n), index=[f"c{i}" for i in range(n)])
    campaigns = pd.DataFrame(
        {"campaign_id": [f"k{i}" for i in range(20)], "discount_offer": np.arange(20) % 2 == 0}
    )
    orders, events = [], []
    for cid, s in sensitivity.items():
        for day in -rng.uniform(1, 300, rng.poisson(4)):
            orders.append((cid, day, 5.0 if rng.random() < s else 0.0))
        for k, campaign in enumerate(campaigns.itertuples()):
            sent = -300 + 14 * k
            events.append((cid, "received", sent, campaign.campaign_id))
            if rng.random() < 0.5:
                events.append((cid, "opened", sent + 0.1, campaign.campaign_id))
                if rng.random() < (s if campaign.discount_offer else 0.03):
                    orders.append((cid, sent + 0.2, 5.0 if campaign.discount_offer else 0.0))
    order_frame = pd.DataFrame(orders, columns=["customer_id", "day", "discount"])
    order_frame["order_id"] = [f"o{i}" for i in range(len(order_frame))]
    order_frame["ordered_at"] = AS_OF + pd.to_timedelta(order_frame["day"], unit="D")
    order_frame["amount"] = 40.0
    event_frame = pd.DataFrame(events, columns=["customer_id", "kind", "day", "campaign_id"])
    event_frame["occurred_at"] = AS_OF + pd.to_timedelta(event_frame["day"], unit="D")
    return order_frame, event_frame, campaigns, sensitivity


def test_score_tracks_true_sensitivity_and_is_banded() -> None:
    orders, events, campaigns, sensitivity = _shop(seed=1)
    frames, _ = make_frames(orders, events=events)
    out = discount_sensitivity(history_at(frames, AS_OF), campaigns).set_index("customer_id")
    assert list(out.reset_index().columns) == list(OUTPUT_COLUMNS)
    assert out["discount_score"].between(0, 1).all()
    rho = spearmanr(out["discount_score"], sensitivity.reindex(out.index))[0]
    assert rho >= 0.6
    high = out["discount_band"] == "high"
    assert sensitivity.reindex(out.index)[high].mean() > sensitivity.reindex(out.index)[~high].mean()
    assert set(out["model_kind"]) <= {"orders_and_response", "orders_only", "response_only"}
    assert out["discount_response"].mean() > out["plain_response"].mean()


def test_without_campaigns_only_orders_count_and_strangers_sit_in_the_middle() -> None:
    orders, events, _, _ = _shop(seed=2)
    silent = events.loc[events["customer_id"] == "c0"].assign(customer_id="silent")
    silent = silent.loc[silent["kind"] == "received"]
    frames, _ = make_frames(orders, events=pd.concat([events, silent]))
    out = discount_sensitivity(history_at(frames, AS_OF)).set_index("customer_id")
    assert (out.loc[out.index != "silent", "model_kind"] == "orders_only").all()
    assert "silent" not in out.index  # received mail but neither ordered nor opened an offer
    with_campaigns = discount_sensitivity(
        history_at(frames, AS_OF), pd.DataFrame({"campaign_id": ["k0"], "discount_offer": [True]})
    )
    one_order = with_campaigns.loc[with_campaigns["n_orders"] == 1, "discount_score"]
    assert (one_order.sub(0.5).abs() < with_campaigns["discount_score"].sub(0.5).abs().max()).all()


def test_missing_campaign_column_is_named() -> None:
    orders, events, campaigns, _ = _shop(seed=3)
    frames, _ = make_frames(orders.head(20), events=events.head(50))
    with pytest.raises(FrameError, match="discount_offer"):
        discount_sensitivity(history_at(frames, AS_OF), campaigns.drop(columns="discount_offer"))


def test_small_shop_score_correlates_with_true_sensitivity() -> None:
    shop, truth = generate_with_truth("small", seed=7, as_of=AS_OF.to_pydatetime())
    history = history_at(shop_frames(shop), AS_OF)
    out = discount_sensitivity(history).set_index("customer_id")  # campaigns come with the frames
    true = truth.people.set_index(truth.people["person_id"].astype(str))["discount_sensitivity"]
    both = out["model_kind"] == "orders_and_response"
    assert spearmanr(out["discount_score"], true.reindex(out.index))[0] >= 0.4
    assert spearmanr(out.loc[both, "discount_score"], true.reindex(out.index)[both])[0] >= 0.5
    by_band = true.reindex(out.index).groupby(out["discount_band"]).mean()
    assert by_band["low"] < by_band["medium"] < by_band["high"]
