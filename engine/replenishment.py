"""Replenishment: when will a customer run out of an item they buy again and again?

Per customer and item (a product, or a whole category), the gaps between repeat purchases are modelled
on the log scale, because cycles are multiplicative (a 30-day item is re-bought after 24 to 38 days,
not after 30 +- 7). A customer's own mean log-gap is pooled with the item's population distribution by
a normal-normal empirical Bayes step: one repeat barely moves the item's typical cycle, ten repeats
mostly speak for themselves. Robust statistics (median, MAD) describe the population, because a
skipped cycle (bought elsewhere once) doubles a gap.

The next date is the median of the predictive gap *conditional on no purchase so far*: a customer
already past their usual cycle is expected soon, not at a date in the past.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm

from engine._behaviour import require_columns
from engine.frames import History

Level = Literal["product", "category"]
_ITEM_COLUMN: dict[str, str] = {"product": "product_id", "category": "category"}
_MAD_TO_SD = 1.4826

OUTPUT_COLUMNS = (
    "customer_id",
    "level",
    "item",
    "cycle_days",
    "next_date",
    "next_date_low",
    "next_date_high",
    "due_in_days",
    "last_purchase_at",
    "n_purchases",
    "n_repeats",
    "model_kind",
)


@dataclass(frozen=True, slots=True)
class ReplenishmentConfig:
    """Which items count as replenished, and how much a customer's own history must say."""

    min_item_repeaters: int = 5  # customers with at least one repeat gap before an item gets a cycle
    min_repeat_share: float = 0.10  # share of the item's buyers who bought it again
    # Robust sd of log-gaps above which re-buying is not a cycle: memoryless (exponential) gaps have
    # about 1.28, a monthly consumable with a week of slack about 0.25.
    max_log_gap_spread: float = 0.7
    min_gap_days: int = 1  # purchases on the same day are one occasion
    personal_min_repeats: int = 3  # below this the row is labelled shrunk_to_population
    interval: float = 0.8  # central mass of the predictive interval (next_date_low / next_date_high)


@dataclass(frozen=True, slots=True)
class ItemCycle:
    """Population log-gap distribution of one item: centre, between-customer and within-customer spread."""

    mu: float
    tau2: float
    sigma2: float


def replenishment_dates(
    history: History,
    level: Level = "product",
    config: ReplenishmentConfig | None = None,
    cycles: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per customer x item with a repeat cycle: cycle, next date with an interval, and model_kind.

    Only items that the population re-buys (see `ReplenishmentConfig`) get rows; every buyer of such
    an item gets one, even after a single purchase (`model_kind` = population_prior). `cycles` are the
    population's item cycles (`item_cycles`) when `history` holds only some of the customers (a chunk);
    by default they are fitted on `history` itself.
    """
    return replenishment_posteriors(history, level, config, cycles).loc[:, list(OUTPUT_COLUMNS)]


def replenishment_posteriors(
    history: History,
    level: Level = "product",
    config: ReplenishmentConfig | None = None,
    cycles: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """`replenishment_dates` plus each row's posterior log-gap distribution (`log_cycle`, `log_spread`)
    and `elapsed_days` since the last purchase, for callers that need probabilities, not dates
    (the purchase features ask how likely a refill is within a horizon)."""
    cfg = config or ReplenishmentConfig()
    occasions, gaps = _occasions_and_gaps(history, level, cfg)
    if cycles is None:
        cycles = item_cycles(_gap_stats(occasions, gaps), cfg)
    per_customer = _customer_summary(occasions, gaps).merge(cycles, on="item", how="inner")
    out = _predict(per_customer, history.cutoff, cfg)
    out.insert(1, "level", level)
    return out.sort_values(["customer_id", "item"]).reset_index(drop=True)


@dataclass(frozen=True)
class GapStats:
    """What the population's item cycles are fitted from, as counts: the stats of two disjoint sets of
    customers add up to the stats of both, so a shop read chunk by chunk gets the cycles of the whole.

    Exact, not a sketch: gaps are whole days, so each item's log-gaps take few distinct values, and the
    medians `_fit_item` takes are read off the counted values (`_weighted_median`).
    """

    buyers: pd.Series  # item -> customers who bought it
    repeaters: pd.Series  # item -> customers who bought it again
    log_gaps: pd.Series  # (item, log-gap) -> gaps
    own_spread: pd.Series  # (item, |log-gap - the customer's median|) -> gaps of customers with 2+ gaps

    def __add__(self, other: GapStats) -> GapStats:
        return GapStats(
            *(
                a.add(b, fill_value=0).astype("int64")
                for a, b in zip(_fields(self), _fields(other), strict=True)
            )
        )


def _fields(stats: GapStats) -> tuple[pd.Series, ...]:
    return stats.buyers, stats.repeaters, stats.log_gaps, stats.own_spread


def gap_stats(
    history: History, level: Level = "product", config: ReplenishmentConfig | None = None
) -> GapStats:
    """The `GapStats` of the history's customers."""
    return _gap_stats(*_occasions_and_gaps(history, level, config or ReplenishmentConfig()))


def item_cycles(stats: GapStats, config: ReplenishmentConfig | None = None) -> pd.DataFrame:
    """Population cycle per item (columns item, mu, tau2, sigma2), for items enough people re-buy."""
    cfg = config or ReplenishmentConfig()
    share = (stats.repeaters / stats.buyers.reindex(stats.repeaters.index)).fillna(0.0)
    eligible = stats.repeaters.index[
        (stats.repeaters >= cfg.min_item_repeaters) & (share >= cfg.min_repeat_share)
    ]
    rows = [{"item": item, **asdict(_fit_item(stats, item))} for item in sorted(eligible)]
    cycles = pd.DataFrame(rows, columns=["item", "mu", "tau2", "sigma2"])
    spread = np.sqrt(cycles["tau2"] + cycles["sigma2"])
    return cycles.loc[spread <= cfg.max_log_gap_spread].reset_index(drop=True)


def _occasions_and_gaps(
    history: History, level: Level, cfg: ReplenishmentConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if level not in _ITEM_COLUMN:
        raise ValueError(f"level: expected 'product' or 'category', got {level!r}")
    occasions = _occasions(history.frames.lines, _ITEM_COLUMN[level], cfg)
    return occasions, _gaps(occasions)


def _occasions(lines: pd.DataFrame, item_column: str, cfg: ReplenishmentConfig) -> pd.DataFrame:
    """Distinct purchase days per customer and item (several lines on one day are one occasion)."""
    require_columns(lines, ["customer_id", item_column, "ordered_at"], "lines")
    usable = lines.loc[lines[item_column].notna(), ["customer_id", item_column, "ordered_at"]]
    day = usable["ordered_at"].dt.floor(f"{cfg.min_gap_days}D")
    frame = pd.DataFrame({"customer_id": usable["customer_id"], "item": usable[item_column], "day": day})
    return frame.drop_duplicates().sort_values(["customer_id", "item", "day"]).reset_index(drop=True)


def _gaps(occasions: pd.DataFrame) -> pd.DataFrame:
    """Log of each gap (days) between consecutive purchase occasions of the same item."""
    days = occasions.groupby(["customer_id", "item"], sort=False)["day"].diff().dt.total_seconds() / 86400
    gaps = occasions.assign(gap=days).dropna(subset=["gap"])
    return gaps.assign(log_gap=np.log(gaps["gap"].to_numpy(dtype=float)))


def _gap_stats(occasions: pd.DataFrame, gaps: pd.DataFrame) -> GapStats:
    per_customer = gaps.groupby(["customer_id", "item"])["log_gap"]
    deviations = (gaps["log_gap"] - per_customer.transform("median")).abs()
    multi = (per_customer.transform("size") >= 2).to_numpy()
    return GapStats(
        buyers=occasions.groupby("item")["customer_id"].nunique(),
        repeaters=gaps.groupby("item")["customer_id"].nunique(),
        log_gaps=gaps.groupby(["item", "log_gap"]).size(),
        own_spread=deviations[multi].groupby([gaps["item"][multi], deviations[multi]]).size(),
    )


def _weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """`np.median` of `values` each repeated `counts` times, without materialising the repeats."""
    order = np.argsort(values, kind="stable")
    values, ends = values[order], np.cumsum(counts[order])
    n = int(ends[-1])

    def nth(k: int) -> float:
        return float(values[np.searchsorted(ends, k, side="right")])

    return nth(n // 2) if n % 2 else (nth(n // 2 - 1) + nth(n // 2)) / 2


def _counted(series: pd.Series, item: object) -> tuple[np.ndarray, np.ndarray]:
    """The values counted for `item` in a (item, value) -> count series, and their counts."""
    if item not in series.index.get_level_values(0):
        return np.empty(0), np.empty(0, dtype="int64")
    part = series.xs(item, level=0)
    return part.index.to_numpy(dtype="float64"), part.to_numpy(dtype="int64")


def _fit_item(stats: GapStats, item: object) -> ItemCycle:
    """Robust centre and the split of log-gap variance into within- and between-customer parts."""
    log_gap, counts = _counted(stats.log_gaps, item)
    mu = _weighted_median(log_gap, counts)
    total = max(float(_MAD_TO_SD * _weighted_median(np.abs(log_gap - mu), counts)) ** 2, 1e-4)
    spread, multi = _counted(stats.own_spread, item)
    if multi.sum() >= 5:
        within = float(_MAD_TO_SD * _weighted_median(spread, multi)) ** 2
        # The median absolute deviation from a customer's own median understates the spread for small n.
        within = float(np.clip(within * 1.5, 1e-4, total))
    else:
        within = total / 2
    return ItemCycle(mu=mu, tau2=max(total - within, 1e-4), sigma2=within)


def _customer_summary(occasions: pd.DataFrame, gaps: pd.DataFrame) -> pd.DataFrame:
    """Purchases, repeats, last purchase day and mean log-gap per customer and item."""
    base = occasions.groupby(["customer_id", "item"], as_index=False).agg(
        n_purchases=("day", "size"), last_purchase_at=("day", "max")
    )
    own = gaps.groupby(["customer_id", "item"], as_index=False).agg(
        n_repeats=("log_gap", "size"), own_mean=("log_gap", "mean")
    )
    out = base.merge(own, on=["customer_id", "item"], how="left")
    out["n_repeats"] = out["n_repeats"].fillna(0).astype(int)
    return out


def _predict(rows: pd.DataFrame, cutoff: pd.Timestamp, cfg: ReplenishmentConfig) -> pd.DataFrame:
    """Posterior cycle per row and the conditional median (and interval) of the next purchase date."""
    n = rows["n_repeats"].to_numpy(dtype=float)
    own = rows["own_mean"].fillna(0.0).to_numpy()
    mu, tau2, sigma2 = (rows[c].to_numpy() for c in ("mu", "tau2", "sigma2"))
    precision = n / sigma2 + 1.0 / tau2
    post_mu = (n * own / sigma2 + mu / tau2) / precision
    spread = np.sqrt(sigma2 + 1.0 / precision)
    elapsed = (cutoff - rows["last_purchase_at"]).dt.total_seconds().to_numpy() / 86400
    survived = norm.cdf((np.log(np.maximum(elapsed, 1e-9)) - post_mu) / spread)
    tail = (1 - cfg.interval) / 2

    def gap_at(q: float) -> np.ndarray:
        level = np.clip(survived + (1 - survived) * q, 1e-9, 1 - 1e-9)
        # Far past the usual cycle the tail quantile saturates; the gap is at least what already elapsed.
        return np.maximum(np.exp(post_mu + spread * norm.ppf(level)), elapsed)

    last = rows["last_purchase_at"]
    out = rows.loc[:, ["customer_id", "item", "n_purchases", "n_repeats", "last_purchase_at"]].copy()
    out["cycle_days"] = np.exp(post_mu)
    out["next_date"] = last + pd.to_timedelta(gap_at(0.5), unit="D")
    out["next_date_low"] = last + pd.to_timedelta(gap_at(tail), unit="D")
    out["next_date_high"] = last + pd.to_timedelta(gap_at(1 - tail), unit="D")
    out["due_in_days"] = (out["next_date"] - cutoff).dt.total_seconds() / 86400
    out["model_kind"] = np.where(
        n == 0,
        "population_prior",
        np.where(n < cfg.personal_min_repeats, "shrunk_to_population", "personal"),
    )
    out["log_cycle"], out["log_spread"], out["elapsed_days"] = post_mu, spread, elapsed
    return out
