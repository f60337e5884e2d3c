"""Replenishment: cycles per customer x item, pooled with the item's population when history is thin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from engine.frames import FrameError, history_at, make_frames
from engine.replenishment import OUTPUT_COLUMNS, replenishment_dates
from simulators.shop_model import CONSUMABLES
from simulators.shops import generate_with_truth
from tests.support.shop_frames import shop_frames

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def _orders_with_cycles(seed: int, n_people: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coffee on a personal cycle (30 d x LogNormal(0, 0.2)) plus memoryless re-buys of shoes."""
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for person in range(n_people):
        cycle = 30 * np.exp(0.2 * rng.standard_normal())
        truth.append((f"c{person}", cycle))
        day = -rng.uniform(30, 600)
        while day < 0:
            rows.append((f"c{person}", day, "coffee"))
            if rng.random() < 0.15:
                break
            day += cycle * np.exp(0.1 * rng.standard_normal())
        for shoe_day in -np.sort(rng.uniform(0, 700, rng.poisson(2))):
            rows.append((f"c{person}", shoe_day, "shoes"))
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "category"])
    frame["order_id"] = [f"o{i}" for i in range(len(frame))]
    frame["ordered_at"] = AS_OF + pd.to_timedelta(frame["day"], unit="D")
    return frame, pd.DataFrame(truth, columns=["customer_id", "true_cycle"])


def _history(orders: pd.DataFrame):
    frames, _ = make_frames(
        orders.assign(amount=10.0)[["customer_id", "order_id", "ordered_at", "amount"]],
        lines=orders.assign(product_id=orders["category"] + "-1", quantity=1, price=10.0),
    )
    return history_at(frames, AS_OF)


def test_recovers_personal_cycles_and_ignores_memoryless_rebuys() -> None:
    orders, truth = _orders_with_cycles(seed=1)
    out = replenishment_dates(_history(orders), level="category")
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert set(out["item"]) == {"coffee"}  # shoes are re-bought, but with no cycle
    merged = out.merge(truth, on="customer_id")
    error = (merged["cycle_days"] - merged["true_cycle"]).abs() / merged["true_cycle"]
    by_kind = error.groupby(merged["model_kind"]).median()
    assert by_kind["personal"] < 0.06
    assert by_kind["personal"] < by_kind["population_prior"]
    assert (merged["next_date_low"] <= merged["next_date"]).all()
    assert (merged["next_date"] <= merged["next_date_high"]).all()


def test_overdue_customers_are_expected_after_the_cutoff_and_single_buyers_get_the_prior() -> None:
    orders, _ = _orders_with_cycles(seed=2)
    overdue = pd.DataFrame(
        {
            "customer_id": "late",
            "day": [-200.0, -170.0, -140.0, -110.0],
            "category": "coffee",
            "order_id": [f"late{i}" for i in range(4)],
        }
    )
    once = pd.DataFrame(
        {"customer_id": ["once"], "day": [-5.0], "category": ["coffee"], "order_id": ["once0"]}
    )
    extra = pd.concat([overdue, once]).assign(
        ordered_at=lambda f: AS_OF + pd.to_timedelta(f["day"], unit="D")
    )
    out = replenishment_dates(_history(pd.concat([orders, extra], ignore_index=True)), level="product")
    out = out.set_index("customer_id")
    assert out.loc["late", "model_kind"] == "personal"
    assert out.loc["late", "cycle_days"] == pytest.approx(30, rel=0.15)
    assert out.loc["late", "next_date"] >= AS_OF
    assert out.loc["once", "model_kind"] == "population_prior"
    assert out.loc["once", "item"] == "coffee-1" and out.loc["once", "level"] == "product"
    assert out.loc["once", "due_in_days"] == pytest.approx(out.loc["once", "cycle_days"] - 5, abs=1.0)


def test_bad_arguments_are_named() -> None:
    orders, _ = _orders_with_cycles(seed=3, n_people=5)
    history = _history(orders)
    with pytest.raises(ValueError, match="level"):
        replenishment_dates(history, level="brand")  # type: ignore[arg-type]
    broken = dataclasses.replace(history.frames, lines=history.frames.lines.drop(columns="category"))
    with pytest.raises(FrameError, match="category"):
        replenishment_dates(dataclasses.replace(history, frames=broken), level="category")


@pytest.fixture(scope="module")
def small_shop():
    shop, truth = generate_with_truth("small", seed=7, as_of=AS_OF.to_pydatetime())
    return history_at(shop_frames(shop), AS_OF), truth


def _true_cycles(truth) -> pd.DataFrame:
    people = truth.people.set_index(truth.people["person_id"].astype(str))
    columns = {f"cycle_{c.category}": c.category for c in CONSUMABLES}
    long = people[list(columns)].rename(columns=columns).stack().rename("true_cycle").reset_index()
    long.columns = ["customer_id", "item", "true_cycle"]
    return long


def test_small_shop_cycle_and_next_date_error_within_20_percent_of_the_true_cycle(small_shop) -> None:
    history, truth = small_shop
    out = replenishment_dates(history, level="category")
    assert set(out["item"]) == {c.category for c in CONSUMABLES}  # durables are not replenished
    merged = out.merge(_true_cycles(truth), on=["customer_id", "item"])
    assert len(merged) == len(out)
    cycle_error = ((merged["cycle_days"] - merged["true_cycle"]).abs() / merged["true_cycle"]).median()
    assert cycle_error <= 0.20
    future = truth.orders.loc[
        (truth.orders["ordered_at"] >= AS_OF) & (truth.orders["consumable"] >= 0) & ~truth.orders["cancelled"]
    ]
    future = future.assign(
        customer_id=future["person_id"].astype(str),
        item=[CONSUMABLES[i].category for i in future["consumable"]],
    )
    actual = future.groupby(["customer_id", "item"], as_index=False)["ordered_at"].min()
    dated = merged.merge(actual, on=["customer_id", "item"])
    assert len(dated) >= 300
    days_off = (dated["next_date"] - dated["ordered_at"]).dt.total_seconds().abs() / 86400
    assert (days_off / dated["true_cycle"]).median() <= 0.20
