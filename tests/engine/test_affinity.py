"""Affinity: spend shares per category and next-best items from co-purchase rules with their support."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.affinity import NEXT_BEST_COLUMNS, category_affinity, co_purchase_rules, next_best
from engine.frames import history_at, make_frames
from simulators.shops import generate_with_truth
from tests.support.shop_frames import shop_frames

AS_OF = pd.Timestamp("2025-06-01T00:00:00Z")


def _history(baskets: dict[str, list[tuple[str, float]]]):
    rows = [(c, cat, price) for c, items in baskets.items() for cat, price in items]
    lines = pd.DataFrame(rows, columns=["customer_id", "category", "price"])
    lines["order_id"] = [f"o{i}" for i in range(len(lines))]
    lines["product_id"] = lines["category"] + "-1"
    orders = lines.assign(ordered_at=AS_OF - pd.Timedelta(days=10), amount=lines["price"])
    frames, _ = make_frames(orders[["customer_id", "order_id", "ordered_at", "amount"]], lines=lines)
    return history_at(frames, AS_OF)


def _baskets() -> dict[str, list[tuple[str, float]]]:
    """Ten coffee+filter buyers, three coffee-only, one tea-only; tea is never bought with coffee."""
    baskets = {f"both{i}": [("coffee", 30.0), ("filters", 10.0)] for i in range(10)}
    baskets |= {f"coffee{i}": [("coffee", 20.0)] for i in range(3)}
    baskets |= {f"tea{i}": [("tea", 15.0)] for i in range(6)}
    baskets["solo"] = [("tea", 5.0)]
    return baskets


def test_rules_recommend_the_co_purchased_item_with_its_support() -> None:
    history = _history(_baskets())
    rules = co_purchase_rules(history, "category", min_support=5).set_index(["antecedent", "item"])
    assert rules.loc[("coffee", "filters"), "support"] == 10
    assert rules.loc[("coffee", "filters"), "confidence"] == pytest.approx(10 / 13)
    assert rules.loc[("filters", "coffee"), "confidence"] == pytest.approx(1.0)
    out = next_best(history, "category", k=1, min_support=5).set_index("customer_id")
    assert list(out.reset_index().columns) == list(NEXT_BEST_COLUMNS)
    assert out.loc["coffee0", "item"] == "filters" and out.loc["coffee0", "based_on"] == "coffee"
    assert out.loc["coffee0", "model_kind"] == "co_purchase"
    assert out.loc["coffee0", "lift"] == pytest.approx((10 / 13) / (10 / 20))
    # Tea buyers have no rule with enough support: the most popular item they lack.
    assert out.loc["solo", "item"] == "coffee" and out.loc["solo", "model_kind"] == "popularity"
    assert out.loc["solo", "support"] == 13 and pd.isna(out.loc["solo", "based_on"])


def test_top_k_never_repeats_or_recommends_owned_items() -> None:
    history = _history(_baskets())
    out = next_best(history, "product", k=2, min_support=5)
    owned = set(zip(history.frames.lines["customer_id"], history.frames.lines["product_id"], strict=True))
    assert not any((c, i) in owned for c, i in zip(out["customer_id"], out["item"], strict=True))
    assert not out.duplicated(["customer_id", "item"]).any()
    counts = out.groupby("customer_id")["rank"].agg(["min", "max", "size"])
    assert (counts["min"] == 1).all() and (counts["max"] == counts["size"]).all()
    assert counts.loc["both0", "size"] == 1  # only tea is left to recommend
    with pytest.raises(ValueError, match="level"):
        next_best(history, "brand")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="k"):
        next_best(history, k=0)


def test_category_affinity_shares_and_lift() -> None:
    out = category_affinity(_history(_baskets()))
    assert out.groupby("customer_id")["share"].sum().to_numpy() == pytest.approx(1.0)
    both = out.loc[out["customer_id"] == "both0"].set_index("category")
    assert both.loc["coffee", "share"] == pytest.approx(0.75) and both.loc["coffee", "rank"] == 1
    shop_coffee = (10 * 30 + 3 * 20) / (10 * 40 + 3 * 20 + 6 * 15 + 5)
    assert both.loc["coffee", "lift"] == pytest.approx(0.75 / shop_coffee)


def test_small_shop_next_product_beats_popularity_on_the_next_half_year() -> None:
    shop, _ = generate_with_truth("small", seed=7, as_of=AS_OF.to_pydatetime())
    frames = shop_frames(shop)
    cutoff = AS_OF - pd.Timedelta(days=180)
    history = history_at(frames, cutoff)
    recommended = next_best(history, "product", k=1)
    before = history.frames.lines[["customer_id", "product_id"]].drop_duplicates()
    later = frames.lines.loc[frames.lines["ordered_at"] >= cutoff, ["customer_id", "product_id"]]
    new = later.merge(before, how="left", indicator=True).query("_merge == 'left_only'")
    bought = set(zip(new["customer_id"], new["product_id"], strict=True))
    hit = np.mean(
        [(c, i) in bought for c, i in zip(recommended["customer_id"], recommended["item"], strict=True)]
    )
    ranking = before["product_id"].value_counts().index
    owned = before.groupby("customer_id")["product_id"].agg(set)
    popular = [next(p for p in ranking if p not in owned[c]) for c in recommended["customer_id"]]
    baseline = np.mean([(c, i) in bought for c, i in zip(recommended["customer_id"], popular, strict=True)])
    assert hit >= 1.5 * baseline
    assert (recommended["support"] >= 5).all()
