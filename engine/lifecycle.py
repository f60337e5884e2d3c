"""Lifecycle stage of every known customer, on the shop's own purchase cycle.

A fixed "90 days without an order means lapsed" is wrong for a coffee shop (weekly cycle) and for a
furniture shop (yearly). The thresholds here are quantiles of the shop's repeat-purchase gaps (the
days between consecutive orders of the same customer, pooled over all customers, before the cutoff):

    active_days  = P75 of gaps   three in four repeat orders come sooner than this
    at_risk_days = P90 of gaps   waiting longer than this is unusual
    churn_days   = P98 of gaps   hardly anybody who waited this long came back

Stages, checked in this order (the first that applies wins):

    prospect  no order before the cutoff (a profile only)
    churned   days since last order > churn_days
    lapsed    days since last order > at_risk_days
    at_risk   days since last order > active_days
    new       first order within active_days (so within the first cycle)
    loyal     orders >= loyal_orders (P80 of order counts among repeat buyers, at least 3)
    active    everyone else: ordered within the cycle

With fewer than `min_gaps` repeat gaps the quantiles are noise, so thresholds fall back to multiples
of a configured typical cycle; `LifecycleThresholds.source` says which was used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine._behaviour import require_columns
from engine.frames import History

DAY = pd.Timedelta(days=1)
STAGES = ("prospect", "new", "active", "loyal", "at_risk", "lapsed", "churned")
OUTPUT_COLUMNS = ("customer_id", "lifecycle_stage", "days_since_last_order", "n_orders")


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    active_quantile: float = 0.75
    at_risk_quantile: float = 0.90
    churn_quantile: float = 0.98
    loyal_quantile: float = 0.80  # of order counts among repeat buyers
    min_loyal_orders: int = 3
    min_gaps: int = 30  # fewer repeat gaps than this and the fallback cycle is used
    fallback_cycle_days: float = 60.0  # typical gap assumed when the shop has too little history
    fallback_multiples: tuple[float, float, float] = (1.0, 2.0, 4.0)  # active, at_risk, churn


@dataclass(frozen=True, slots=True)
class LifecycleThresholds:
    """The cut points used, in days and orders, and whether they came from the shop or the fallback."""

    active_days: float
    at_risk_days: float
    churn_days: float
    loyal_orders: int
    n_gaps: int
    source: str  # "shop" or "fallback"


def repeat_gaps(orders: pd.DataFrame) -> np.ndarray:
    """Days between consecutive orders of the same customer (same-day reorders give 0)."""
    ordered = orders.sort_values(["customer_id", "ordered_at"], kind="stable")
    same = ordered["customer_id"].eq(ordered["customer_id"].shift())
    gaps = ordered["ordered_at"].diff()[same] / DAY
    return gaps.to_numpy(dtype=float)


@dataclass(frozen=True)
class LifecycleCounts:
    """What the thresholds are read from, gathered so that two sets of customers add up to both.

    Exact: the quantiles are taken of the pooled gaps themselves (8 bytes per repeat order, far less
    than the orders they come from) and of the counted order counts of repeat buyers.
    """

    gaps: np.ndarray  # days between consecutive orders of the same customer, any order
    repeat_orders: pd.Series  # order count (>= 2) -> repeat buyers with that many orders

    def __add__(self, other: LifecycleCounts) -> LifecycleCounts:
        counts = self.repeat_orders.add(other.repeat_orders, fill_value=0).astype("int64")
        return LifecycleCounts(np.concatenate([self.gaps, other.gaps]), counts)


def lifecycle_counts(orders: pd.DataFrame) -> LifecycleCounts:
    """The `LifecycleCounts` of these customers' orders."""
    counts = orders.groupby("customer_id").size()
    return LifecycleCounts(repeat_gaps(orders), counts[counts >= 2].value_counts().astype("int64"))


def lifecycle_thresholds(orders: pd.DataFrame, config: LifecycleConfig | None = None) -> LifecycleThresholds:
    """Thresholds from the shop's repeat gaps, or from the fallback cycle when there are too few."""
    return thresholds_from_counts(lifecycle_counts(orders), config)


def thresholds_from_counts(
    counts: LifecycleCounts, config: LifecycleConfig | None = None
) -> LifecycleThresholds:
    """`lifecycle_thresholds` of the customers whose counts these are."""
    cfg = config or LifecycleConfig()
    gaps = np.sort(counts.gaps)
    loyal = cfg.min_loyal_orders
    if len(counts.repeat_orders):
        repeaters = np.repeat(counts.repeat_orders.index.to_numpy(), counts.repeat_orders.to_numpy())
        loyal = max(loyal, int(np.ceil(np.quantile(np.sort(repeaters), cfg.loyal_quantile))))
    if len(gaps) < cfg.min_gaps:
        a, r, c = (cfg.fallback_cycle_days * m for m in cfg.fallback_multiples)
        return LifecycleThresholds(a, r, c, loyal, len(gaps), "fallback")
    q = np.quantile(gaps, [cfg.active_quantile, cfg.at_risk_quantile, cfg.churn_quantile])
    # A shop of same-day reorders would give 0-day thresholds; one day is the floor of a cycle.
    a, r, c = np.maximum.accumulate(np.maximum(q, 1.0))
    return LifecycleThresholds(float(a), float(r), float(c), loyal, len(gaps), "shop")


def lifecycle_stages(
    history: History, config: LifecycleConfig | None = None, thresholds: LifecycleThresholds | None = None
) -> tuple[pd.DataFrame, LifecycleThresholds]:
    """One row per customer known at the cutoff (buyers and profile-only prospects) and the thresholds.

    `days_since_last_order` is NaN and `n_orders` 0 for prospects. `thresholds` are the shop's when
    `history` holds only some of its customers (a chunk); by default they are read off `history`.
    """
    orders = history.orders
    require_columns(orders, ["customer_id", "ordered_at"], "orders")
    thresholds = thresholds or lifecycle_thresholds(orders, config)
    by = orders.groupby("customer_id")
    buyers = pd.DataFrame(
        {
            "days_since_last_order": (history.cutoff - by["ordered_at"].max()) / DAY,
            "days_since_first_order": (history.cutoff - by["ordered_at"].min()) / DAY,
            "n_orders": by.size(),
        }
    )
    profiles = history.frames.customers["customer_id"].astype(str)
    everyone = buyers.reindex(buyers.index.union(pd.Index(profiles.unique())))
    everyone["n_orders"] = everyone["n_orders"].fillna(0).astype("int64")
    everyone["lifecycle_stage"] = _stage(everyone, thresholds)
    everyone.index.name = "customer_id"
    return everyone.reset_index().loc[:, list(OUTPUT_COLUMNS)], thresholds


def _stage(customers: pd.DataFrame, t: LifecycleThresholds) -> np.ndarray:
    since_last = customers["days_since_last_order"].to_numpy(dtype=float)
    since_first = customers["days_since_first_order"].to_numpy(dtype=float)
    n = customers["n_orders"].to_numpy()
    conditions = [
        n == 0,
        since_last > t.churn_days,
        since_last > t.at_risk_days,
        since_last > t.active_days,
        since_first <= t.active_days,
        n >= t.loyal_orders,
    ]
    choices = ["prospect", "churned", "lapsed", "at_risk", "new", "loyal"]
    return np.select(conditions, choices, default="active")
