"""Lifecycle stages on the shop's own purchase cycle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.frames import history_at, make_frames
from engine.lifecycle import OUTPUT_COLUMNS, STAGES, LifecycleConfig, lifecycle_stages, lifecycle_thresholds
from simulators.shops import generate_with_truth, labels
from tests.support.shop_frames import shop_frames

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def _regular_shop(cycle_days: float, seed: int = 0, n: int = 200) -> pd.DataFrame:
    """Customers who reorder every cycle_days on average (gamma gaps, shape 2), some quiet for a while."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        day = -rng.uniform(0, 3 * cycle_days)
        for _ in range(rng.integers(2, 6)):
            rows.append((f"r{i}", day))
            day -= cycle_days * rng.gamma(2.0, 0.5)
    return pd.DataFrame(rows, columns=["customer_id", "day"])


def _orders(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": rows["customer_id"],
            "order_id": [f"o{i}" for i in range(len(rows))],
            "ordered_at": AS_OF + pd.to_timedelta(rows["day"], unit="D"),
            "amount": 30.0,
        }
    )


def _with_probes(cycle_days: float, probes: dict[str, list[float]]) -> pd.DataFrame:
    extra = pd.DataFrame(
        [(cid, d) for cid, days in probes.items() for d in days], columns=["customer_id", "day"]
    )
    return _orders(pd.concat([_regular_shop(cycle_days), extra], ignore_index=True))


def test_thresholds_follow_the_shops_cycle_not_a_fixed_window() -> None:
    weekly = lifecycle_thresholds(_orders(_regular_shop(7.0)))
    monthly = lifecycle_thresholds(_orders(_regular_shop(30.0)))
    assert weekly.source == monthly.source == "shop"
    assert 7 < weekly.active_days < 12 and 30 < monthly.active_days < 50
    for t in (weekly, monthly):
        assert t.active_days <= t.at_risk_days <= t.churn_days
    # The same 20 quiet days: lapsed or worse for the weekly shop, still in cycle for the monthly one.
    probe = {"p": [-20.0, -45.0]}
    weekly_stage = _stage_of(_with_probes(7.0, probe), "p")
    monthly_stage = _stage_of(_with_probes(30.0, probe), "p")
    assert weekly_stage in ("lapsed", "churned") and monthly_stage == "active"


def _stage_of(orders: pd.DataFrame, customer: str) -> str:
    frames, _ = make_frames(orders)
    stages, _ = lifecycle_stages(history_at(frames, AS_OF))
    return stages.set_index("customer_id").loc[customer, "lifecycle_stage"]


def test_every_stage_from_hand_made_customers() -> None:
    probes = {
        "new": [-2.0],
        "active": [-3.0, -40.0],
        "loyal": [-1.0 - 15 * k for k in range(10)],
        "at_risk": [-48.0, -70.0],
        "lapsed": [-70.0, -90.0],
        "churned": [-400.0],
    }
    orders = _with_probes(30.0, probes)
    customers = pd.DataFrame(
        {"customer_id": ["prospect", "new"], "created_at": [AS_OF - pd.Timedelta(days=5)] * 2}
    )
    frames, _ = make_frames(orders, customers=customers)
    stages, t = lifecycle_stages(history_at(frames, AS_OF))
    assert list(stages.columns) == list(OUTPUT_COLUMNS)
    assert t.active_days < 48 < t.at_risk_days < 70 < t.churn_days < 400
    got = stages.set_index("customer_id").loc[[*probes, "prospect"], "lifecycle_stage"].to_dict()
    assert got == {name: name for name in [*probes, "prospect"]}
    prospect = stages.set_index("customer_id").loc["prospect"]
    assert prospect["n_orders"] == 0 and np.isnan(prospect["days_since_last_order"])


def test_too_few_repeat_gaps_fall_back_to_the_configured_cycle() -> None:
    rows = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "day": [-10.0, -50.0, -100.0, -300.0]})
    config = LifecycleConfig(fallback_cycle_days=40.0)
    frames, _ = make_frames(_orders(rows))
    stages, t = lifecycle_stages(history_at(frames, AS_OF), config)
    assert (t.source, t.n_gaps) == ("fallback", 1)
    assert (t.active_days, t.at_risk_days, t.churn_days) == (40.0, 80.0, 160.0)
    assert stages.set_index("customer_id")["lifecycle_stage"].to_dict() == {
        "a": "active",
        "b": "lapsed",
        "c": "churned",
    }


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    shop, truth = generate_with_truth("small", seed=5)
    stages, _ = lifecycle_stages(history_at(shop_frames(shop), truth.as_of))
    future = labels(truth, truth.as_of, 180).assign(person_id=lambda f: f["person_id"].astype(str))
    return stages, future


def test_synthetic_shop_stages_order_future_buying(synthetic) -> None:
    stages, future = synthetic
    assert set(stages["lifecycle_stage"]) == set(STAGES)
    joined = stages.merge(future, left_on="customer_id", right_on="person_id")
    rate = joined.groupby("lifecycle_stage")["bought"].mean()
    # What happened in the next 180 days: the further from the cycle, the fewer came back.
    assert rate["loyal"] > rate["active"] > rate["at_risk"] > rate["lapsed"] > rate["churned"]
    assert rate["churned"] < 0.5 * rate["active"]
