"""The refill-window features on a hand-simulated shop whose coffee habits and their next refill are known.

Each customer re-buys coffee on a personal cycle until the habit stops (15 % after each purchase) and
buys shoes at random. For customers whose habit goes on past the cutoff, `refill_within_30` must be a
calibrated probability of the next refill landing within 30 days; stopped and shoe-only customers
exercise the rest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.features import build_features
from engine.frames import history_at, make_frames

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")
STOP = 0.15


def _shop(seed: int = 3, n_people: int = 1500) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders (one category each) and, per coffee customer, the day of the next refill (NaN: stopped)."""
    rng = np.random.default_rng(seed)
    rows, nxt = [], []
    for person in range(n_people):
        cid = f"c{person}"
        for shoe_day in -np.sort(rng.uniform(1, 700, rng.poisson(1.5))):
            rows.append((cid, shoe_day, "shoes"))
        if person % 5 == 0:
            continue  # shoes only
        cycle = 30 * np.exp(0.2 * rng.standard_normal())
        day, stopped = -rng.uniform(30, 600), False
        while day < 0 and not stopped:
            rows.append((cid, day, "coffee"))
            stopped = rng.random() < STOP
            day += cycle * np.exp(0.1 * rng.standard_normal())
        nxt.append((cid, np.nan if stopped else day))
    orders = pd.DataFrame(rows, columns=["customer_id", "day", "category"])
    orders["order_id"] = [f"o{i}" for i in range(len(orders))]
    orders["ordered_at"] = AS_OF + pd.to_timedelta(orders["day"], unit="D")
    return orders, pd.DataFrame(nxt, columns=["customer_id", "next_day"]).set_index("customer_id")


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    orders, nxt = _shop()
    frames, _ = make_frames(
        orders.assign(amount=10.0)[["customer_id", "order_id", "ordered_at", "amount"]],
        lines=orders.assign(product_id=orders["category"] + "-1", quantity=1, price=10.0),
    )
    return build_features(history_at(frames, AS_OF)), orders, nxt


def test_the_chance_of_a_refill_within_30_days_is_calibrated_while_the_habit_goes_on(shop) -> None:
    features, _, nxt = shop
    going = nxt["next_day"].dropna()
    p = features.loc[going.index, "refill_within_30"]
    assert abs(p.mean() - (going < 30).mean()) < 0.03
    # and it ranks: the customers it calls likely are the ones who re-buy soon
    assert (going[p > 0.8] < 30).mean() > 0.9 > 0.2 > (going[p < 0.2] < 30).mean()
    windows = features[["refill_within_30", "refill_within_90"]].dropna()
    assert len(windows) == len(nxt)
    assert (windows["refill_within_30"] <= windows["refill_within_90"] + 1e-12).all()


def test_an_overdue_habit_is_read_as_stopped(shop) -> None:
    features, _, nxt = shop
    habit = features.loc[nxt.index, "refill_habit_alive"]
    stopped = nxt["next_day"].isna()
    # Customers whose habit goes on are never far past their cycle; most stopped ones are.
    assert habit[~stopped].median() > 0.5
    assert habit[stopped].median() < 0.05


def test_orders_off_every_cycle_are_counted_and_shoe_only_customers_have_no_refill_features(shop) -> None:
    features, orders, nxt = shop
    shoes = orders.loc[orders["category"] == "shoes"].groupby("customer_id")
    expected = shoes.size().reindex(features.index).fillna(0.0)
    pd.testing.assert_series_equal(features["other_orders"], expected, check_names=False)
    recency = (AS_OF - shoes["ordered_at"].max()) / pd.Timedelta(days=1)
    pd.testing.assert_series_equal(
        features["other_recency_days"], recency.reindex(features.index), check_names=False
    )
    shoe_only = features.index.difference(nxt.index)
    assert len(shoe_only) > 0
    assert features.loc[shoe_only, ["refill_habit_alive", "refill_within_30"]].isna().all().all()
