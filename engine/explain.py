"""Top reasons per score, in the customer's terms, from LightGBM's per-feature contributions.

`pred_contrib` (TreeSHAP) splits each raw score into one additive part per feature; the three largest
parts (by size) are the reasons. Each feature has a phrase that states the fact behind it, so a marketer
reads "no order in 142 days", not "recency_days".

TreeSHAP costs leaves x depth^2 per row and tree, and was most of a score-only run. `contributions` gets
the same parts for a fraction of that: a tree's path-dependent SHAP values for a row depend only on which
way the row goes at each of the tree's splits, so LightGBM evaluates each tree once per distinct route.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.features import FEATURE_COLUMNS


def _n(v: float) -> str:
    return f"{v:,.0f}"


def _money(v: float) -> str:
    return f"{v:,.2f}"


PHRASES: dict[str, Callable[[float], str]] = {
    "recency_days": lambda v: f"no order in {_n(v)} days",
    "first_order_days": lambda v: f"first order {_n(v)} days ago",
    "n_orders": lambda v: f"{_n(v)} orders so far",
    "monetary_total": lambda v: f"spent {_money(v)} in total",
    "monetary_mean": lambda v: f"average order {_money(v)}",
    "monetary_max": lambda v: f"largest order {_money(v)}",
    "monetary_last": lambda v: f"last order {_money(v)}",
    "discount_amount_share": lambda v: f"{v:.0%} of list value paid with discounts",
    "orders_30": lambda v: f"{_n(v)} orders in the last 30 days",
    "orders_90": lambda v: f"{_n(v)} orders in the last 90 days",
    "orders_365": lambda v: f"{_n(v)} orders in the last year",
    "discount_share": lambda v: f"{v:.0%} of orders used a discount",
    "weekend": lambda v: f"{v:.0%} of orders on weekends",
    "hour_sin": lambda v: "usual time of day of orders",
    "hour_cos": lambda v: "usual time of day of orders",
    "spend_trend": lambda v: f"spend in the last 90 days {'up' if v >= 0 else 'down'} {_money(abs(v))}",
    "ipt_mean": lambda v: f"orders every {_n(v)} days on average",
    "ipt_std": lambda v: f"order gaps vary by {_n(v)} days",
    "ipt_last": lambda v: f"last gap between orders {_n(v)} days",
    "recency_over_ipt": lambda v: f"{v:.1f}x the usual gap since the last order",
    "n_categories": lambda v: f"bought from {_n(v)} categories",
    "n_products": lambda v: f"bought {_n(v)} different products",
    "items_per_order": lambda v: f"{v:.1f} items per order",
    "top_category_share": lambda v: f"{v:.0%} of spend in one category",
    "received_90": lambda v: f"received {_n(v)} emails in 90 days",
    "opened_90": lambda v: f"opened {_n(v)} emails in 90 days",
    "clicked_90": lambda v: f"clicked {_n(v)} emails in 90 days",
    "bounced": lambda v: "email address bounced" if v > 0 else "email address never bounced",
    "unsubscribed": lambda v: "unsubscribed from email" if v > 0 else "still subscribed to email",
    "received_365": lambda v: f"received {_n(v)} emails in a year",
    "last10_open_share": lambda v: f"opened {v:.0%} of the last emails received (up to 10)",
    "open_rate_90": lambda v: f"opened {v:.0%} of emails in 90 days",
    "click_rate_90": lambda v: f"clicked {v:.0%} of emails in 90 days",
    "opened_365": lambda v: f"opened {_n(v)} emails in a year",
    "clicked_365": lambda v: f"clicked {_n(v)} emails in a year",
    "open_rate_365": lambda v: f"opened {v:.0%} of emails in a year",
    "click_rate_365": lambda v: f"clicked {v:.0%} of emails in a year",
    "received_since_order": lambda v: f"received {_n(v)} emails since the last order",
    "opened_since_order": lambda v: f"opened {_n(v)} emails since the last order",
    "clicked_since_order": lambda v: f"clicked {_n(v)} emails since the last order",
    "offers_since_order": lambda v: f"received {_n(v)} discount offers since the last order",
    "days_since_open": lambda v: f"last opened an email {_n(v)} days ago",
    "days_since_click": lambda v: f"last clicked an email {_n(v)} days ago",
    "account_age_days": lambda v: f"customer for {_n(v)} days",
    "frequency": lambda v: f"bought on {_n(v + 1)} different days",
    "T_days": lambda v: f"first order {_n(v)} days ago",
    "btyd_p_alive": lambda v: f"{v:.0%} likely still active by purchase rhythm",
    "btyd_exp_30": lambda v: f"purchase rhythm suggests {v:.1f} orders a month",
    "btyd_exp_90": lambda v: f"purchase rhythm suggests {v:.1f} orders a quarter",
    "btyd_exp_365": lambda v: f"purchase rhythm suggests {v:.1f} orders a year",
    "gg_order_value": lambda v: f"typical order value {_money(v)}",
    "season_sin": lambda v: "time of year",
    "season_cos": lambda v: "time of year",
    "refill_due_days": lambda v: (
        f"next refill due in {_n(v)} days" if v >= 0.5 else f"refill overdue by {_n(-v)} days"
    ),
    "refill_cycle_ratio": lambda v: f"{v:.1f}x the usual refill cycle since the last refill",
    "refill_items": lambda v: f"re-buys {_n(v)} kinds of items on a cycle",
    "refill_habit_alive": lambda v: f"{v:.0%} likely a refill is still to come on the usual cycle",
    "refill_within_30": lambda v: f"{v:.0%} likely to re-buy a regular item within 30 days",
    "refill_within_90": lambda v: f"{v:.0%} likely to re-buy a regular item within 90 days",
    "other_orders": lambda v: f"{_n(v)} orders beyond regular refills",
    "other_recency_days": lambda v: f"no order beyond regular refills in {_n(v)} days",
    "shop_rate_prev_30": lambda v: f"{v:.0%} of the shop's customers bought in the last 30 days",
    "shop_rate_ly_30": lambda v: f"{v:.0%} of customers bought in the coming month last year",
    "shop_rate_ly_90": lambda v: f"{v:.0%} of customers bought in the coming quarter last year",
}

MISSING: dict[str, str] = {
    "ipt_mean": "only one order so far",
    "ipt_last": "only one order so far",
    "recency_over_ipt": "only one order so far",
    "days_since_open": "never opened an email",
    "days_since_click": "never clicked an email",
    "open_rate_90": "no emails received in 90 days",
    "click_rate_90": "no emails received in 90 days",
    "open_rate_365": "no emails received in a year",
    "click_rate_365": "no emails received in a year",
    "last10_open_share": "never received an email",
    "refill_due_days": "buys nothing on a refill cycle",
    "refill_cycle_ratio": "buys nothing on a refill cycle",
    "refill_items": "buys nothing on a refill cycle",
    "refill_habit_alive": "buys nothing on a refill cycle",
    "refill_within_30": "buys nothing on a refill cycle",
    "refill_within_90": "buys nothing on a refill cycle",
    "other_recency_days": "only regular refills so far",
    "shop_rate_ly_30": "less than a year of shop history",
    "shop_rate_ly_90": "less than a year of shop history",
}


def phrase(feature: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING.get(feature, f"{feature.replace('_', ' ')} unknown")
    return PHRASES[feature](float(value))


def _phrases(feature: str, values: np.ndarray) -> np.ndarray:
    """Phrases for many values of one feature, formatting each distinct value once."""
    distinct, inverse = np.unique(values, return_inverse=True)
    texts = np.array([phrase(feature, float(v)) for v in distinct], dtype=object)
    return texts[inverse.ravel()]


# LightGBM reads a dense row's |value| <= 1e-35 (a float's kZeroThreshold) as 0 before any split.
_ZERO = float(np.float32(1e-35))


@dataclass(frozen=True)
class _Rows:
    """The rows as LightGBM's splits read them, column-major so each split reads one contiguous column."""

    values: np.ndarray  # |value| <= 1e-35 read as 0, NaN kept
    filled: np.ndarray  # and NaN read as 0, as splits that learnt no side for NaN read it

    @classmethod
    def of(cls, values: np.ndarray) -> _Rows:
        snapped = np.asfortranarray(np.where(np.abs(values) <= _ZERO, 0.0, values))
        return cls(snapped, np.asfortranarray(np.where(np.isnan(snapped), 0.0, snapped)))


@dataclass(frozen=True)
class _Split:
    """One numerical split of a tree, decided as LightGBM decides it (`Tree::NumericalDecision`)."""

    feature: int
    threshold: float
    missing: str  # "None", "Zero" or "NaN": which values take the default side
    default_left: bool

    def goes_left(self, rows: _Rows) -> np.ndarray:
        if self.missing == "NaN":
            column = rows.values[:, self.feature]
            left = column <= self.threshold  # False for NaN
            return left | np.isnan(column) if self.default_left else left
        column = rows.filled[:, self.feature]
        left = column <= self.threshold
        if self.missing == "None":
            return left
        zero = column == 0.0  # "Zero": zeros (and NaN, read as 0) take the default side
        return left | zero if self.default_left else left & ~zero


def _splits(node: dict[str, Any]) -> Iterator[_Split]:
    """Every split of a dumped tree (`Booster.dump_model`), in a fixed order."""
    if "leaf_value" in node:
        return
    if node["decision_type"] != "<=":
        raise ValueError(f"only numerical splits are explained, got {node['decision_type']!r}")
    yield _Split(node["split_feature"], float(node["threshold"]), node["missing_type"], node["default_left"])
    yield from _splits(node["left_child"])
    yield from _splits(node["right_child"])


def _routes(splits: list[_Split], rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """One row of each distinct route (the side taken at every split), and each row's route number.

    Routes are built bit by bit into integers, renumbered whenever the next bit could overflow, so a
    tree of any size costs one comparison per split and row. Small trees' route numbers stay below a few
    times the rows, and a table groups them without sorting.
    """
    route, bound = np.zeros(len(rows.values), dtype=np.int64), 1  # every route < bound
    for split in splits:
        if bound > 2**62:
            distinct, dense = np.unique(route, return_inverse=True)
            route, bound = dense.ravel().astype(np.int64), len(distinct)
        route, bound = route * 2 + split.goes_left(rows), bound * 2
    if bound > 4 * len(route) + 2**16:
        _, first, inverse = np.unique(route, return_index=True, return_inverse=True)
        return first, inverse.ravel()
    holder = np.full(bound, -1, dtype=np.int64)
    holder[route] = np.arange(len(route))  # some row of each route: any one gives its parts
    taken = holder >= 0
    return holder[taken], (np.cumsum(taken) - 1)[route]


def _iterations(booster: lgb.Booster) -> int:
    """The trees `predict` uses by default: up to the best iteration when early stopping set one (a
    booster read from text has -1, a trained one without early stopping 0: then all of them)."""
    return booster.best_iteration if booster.best_iteration > 0 else booster.num_trees()


def contributions(booster: lgb.Booster, values: np.ndarray) -> np.ndarray:
    """`booster.predict(values, pred_contrib=True)` without its bias column, TreeSHAP run once per route.

    Path-dependent TreeSHAP reads a row only through the side it takes at each split (the hot child at
    every node, on its own path and off it), so rows with one route share one tree's parts exactly. Over
    a chunk of buyers a tree of 15 leaves sees a few hundred routes: LightGBM evaluates a few % of the
    row-trees. Each call is small, so it runs on one thread (a thread team costs more than it saves).
    The per-feature sums add tree by tree where LightGBM adds leaf by leaf, so they agree to rounding
    (1e-15 relative), not bit for bit.
    """
    if booster.num_model_per_iteration() != 1:
        raise ValueError("contributions explain one tree per iteration (binary or regression models)")
    rows = _Rows.of(values)
    total = np.zeros((values.shape[1], len(values)), dtype="float64")  # feature-major: contiguous adds
    trees = booster.dump_model()["tree_info"][: _iterations(booster)]
    for index, tree in enumerate(trees):
        splits = list(_splits(tree["tree_structure"]))
        if not splits:
            continue  # a single leaf is all bias
        first, inverse = _routes(splits, rows)
        parts = np.asarray(
            booster.predict(
                values[first], start_iteration=index, num_iteration=1, pred_contrib=True, num_threads=1
            )
        )
        used = sorted({split.feature for split in splits})
        for feature, column in zip(used, parts[:, used].T.copy(), strict=True):
            total[feature] += column[inverse]
    return total.T


def top_reasons(booster: lgb.Booster, features: pd.DataFrame, k: int = 3) -> pd.Series:
    """The k largest contributions per customer as '; '-joined phrases, duplicates merged.

    Vectorized over customers: TreeSHAP once per tree and route (`contributions`), one argsort, and
    phrases formatted per feature and distinct value, so 100k customers take seconds, not a Python
    loop per row.
    """
    values = features[list(FEATURE_COLUMNS)].to_numpy(dtype="float64")
    return reasons_from(contributions(booster, values), values, features.index, k)


def reasons_from(contrib: np.ndarray, values: np.ndarray, index: pd.Index, k: int = 3) -> pd.Series:
    """The phrases of the k largest of each row's contributions (one column per `FEATURE_COLUMNS`)."""
    picks = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, : k + 2]
    texts = np.empty(picks.shape, dtype=object)
    for col in np.unique(picks):
        rows, slots = np.nonzero(picks == col)
        texts[rows, slots] = _phrases(FEATURE_COLUMNS[col], values[rows, col])
    repeated = np.zeros(picks.shape, dtype=bool)
    for slot in range(1, picks.shape[1]):
        repeated[:, slot] = (texts[:, :slot] == texts[:, [slot]]).any(axis=1)
    order = np.argsort(repeated, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(texts, order, axis=1)
    usable = ~np.take_along_axis(repeated, order, axis=1)
    joined = chosen[:, 0]
    for slot in range(1, k):
        joined = joined + np.where(usable[:, slot], "; " + chosen[:, slot], "")
    return pd.Series(joined, index=index, dtype="string")


def baseline_reasons(features: pd.DataFrame) -> pd.Series:
    """What BG/NBD looks at: recency, number of purchase days, and customer age."""
    cols = ("recency_days", "frequency", "T_days")
    parts = [features[c].map(lambda v, c=c: phrase(c, v)) for c in cols]
    return (parts[0] + "; " + parts[1] + "; " + parts[2]).astype("string")
