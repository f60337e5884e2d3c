"""The truth of a synthetic shop, and the oracle the engine is measured against.

`ShopTruth` holds what no simulator serves: each person's latent parameters and realized outcomes
(`people`), every order of the history *and of the simulated future year* with its source (`orders`),
each campaign receipt with its conversion odds (`exposures`) and the full campaign plan (`campaigns`).

`oracle_purchase_probability` is the ceiling: it knows the true λ, μ, seasonality, replenishment cycles
and campaign odds, but only the order history up to the cutoff (never the realized dropout time), and
computes P(alive | history) and P(at least one order in (cutoff, cutoff + horizon]) by integrating over
the unknown dropout time on a half-day grid. Campaign receipts are treated as known in advance (the shop
decides whom it mails), with the conversion placed at the send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from simulators.shop_model import (
    CONSUMABLES,
    FUTURE_DAYS,
    cumulative_season,
    replenish_gap_cdf,
)

GRID_STEP_DAYS = 0.5
ORACLE_BATCH = 500
TRUTH_TABLES = ("people", "orders", "exposures", "campaigns")


@dataclass(frozen=True, slots=True)
class ShopTruth:
    """Latent truth of one shop; `*_day` columns are day offsets from `as_of` (negative = past).

    people (one row per person_id):
        purchase_rate (λ, orders/day of the base process), dropout_rate (μ, per day), dropout_day
        (realized; NaN for prospects, may lie far beyond the future year), is_buyer, created_day,
        mean_order_value, engagement (P(open | received at the preferred hour); half that far from
        it), discount_sensitivity (P(order | opened a discount campaign, alive); also the share of
        the person's other orders that use a code), preferred_hour_of_week (UTC, Monday 00:00 = 0),
        replenish_continue, cycle_<category> (own cycle in days; NaN if not a buyer of it),
        consumables, favourite_category, country, timezone, on_<platform>, unsubscribed_day (inf =
        never), future_orders_365 / future_spend_365 (realized, cancelled orders excluded),
        discounted_order_share (realized, history only).
    orders: every order of the history and the future year: order_id, person_id, ordered_at, day,
        source (first / base / replenish / email), consumable (index into CONSUMABLES, -1 if none),
        total, cancelled.
    exposures: each campaign receipt of a buyer (past and future): person_id, campaign_id,
        sent_day, p_order (= P(open) x P(order | open)).
    campaigns: the full plan including future and exploration sends (explore = off-slot hour).
    """

    as_of: pd.Timestamp
    people: pd.DataFrame
    orders: pd.DataFrame
    exposures: pd.DataFrame
    campaigns: pd.DataFrame

    def day(self, moment: datetime) -> float:
        """A moment as a day offset from as_of; a naive datetime is refused."""
        if moment.tzinfo is None:
            raise ValueError("cutoff must be timezone-aware (UTC), got a naive datetime")
        return (pd.Timestamp(moment) - self.as_of).total_seconds() / 86400.0

    def future_orders(self) -> pd.DataFrame:
        """Orders of the simulated year after as_of (never in ShopData)."""
        return self.orders.loc[self.orders["day"] > 0].reset_index(drop=True)

    def replenishment_cycles(self) -> pd.DataFrame:
        """The true cycle in days per (person, consumable category) for the people who buy it."""
        parts = [
            pd.DataFrame(
                {
                    "person_id": self.people["person_id"],
                    "category": item.category,
                    "cycle_days": self.people[f"cycle_{item.category}"],
                }
            ).dropna()
            for item in CONSUMABLES
        ]
        return pd.concat(parts, ignore_index=True)

    def save(self, directory: Path) -> None:
        """Write the truth as gzip CSV files (one per table) plus as_of, separately from any shop data."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "as_of.txt").write_text(self.as_of.isoformat())
        for name in TRUTH_TABLES:
            getattr(self, name).to_csv(directory / f"{name}.csv.gz", index=False)

    @classmethod
    def load(cls, directory: Path) -> ShopTruth:
        as_of = pd.Timestamp((directory / "as_of.txt").read_text().strip())
        tables = {name: pd.read_csv(directory / f"{name}.csv.gz") for name in TRUTH_TABLES}
        for column in ("ordered_at",):
            tables["orders"][column] = pd.to_datetime(tables["orders"][column], utc=True)
        return cls(as_of=as_of, **tables)


def labels(truth: ShopTruth, cutoff: datetime, horizon_days: float) -> pd.DataFrame:
    """What really happened in (cutoff, cutoff + horizon] for everyone created by the cutoff.

    Cancelled orders do not count. Columns: person_id, orders, spend, bought.
    """
    start = _check_window(truth, cutoff, horizon_days)
    people = truth.people.loc[truth.people["created_day"] <= start, "person_id"]
    orders = truth.orders
    window = orders.loc[
        (orders["day"] > start) & (orders["day"] <= start + horizon_days) & ~orders["cancelled"]
    ]
    grouped = window.groupby("person_id")
    frame = pd.DataFrame({"person_id": people.to_numpy()})
    frame["orders"] = grouped.size().reindex(frame["person_id"]).fillna(0).astype(int).to_numpy()
    frame["spend"] = grouped["total"].sum().reindex(frame["person_id"]).fillna(0.0).to_numpy()
    frame["bought"] = frame["orders"] > 0
    return frame


def oracle_purchase_probability(truth: ShopTruth, cutoff: datetime, horizon_days: float) -> pd.DataFrame:
    """P(alive at cutoff) and P(>= 1 order in the horizon) for every buyer with an order by the cutoff.

    Columns: person_id, p_alive, p_purchase. Uses the true rates and the order history up to the
    cutoff only.
    """
    start = _check_window(truth, cutoff, horizon_days)
    state = _history_state(truth, start)
    results = []
    order = np.argsort(state["last_day"].to_numpy(), kind="stable")
    for begin in range(0, len(order), ORACLE_BATCH):
        batch = state.iloc[order[begin : begin + ORACLE_BATCH]]
        results.append(_oracle_batch(truth, batch, start, horizon_days))
    if not results:
        return pd.DataFrame(columns=["person_id", "p_alive", "p_purchase"])
    return pd.concat(results, ignore_index=True).sort_values("person_id", ignore_index=True)


def _check_window(truth: ShopTruth, cutoff: datetime, horizon_days: float) -> float:
    start = truth.day(cutoff)
    if horizon_days <= 0 or start + horizon_days > FUTURE_DAYS:
        raise ValueError(
            f"horizon must be positive and end within {FUTURE_DAYS} days after as_of; "
            f"got cutoff day {start:.1f} + horizon {horizon_days}"
        )
    return start


def _history_state(truth: ShopTruth, start: float) -> pd.DataFrame:
    """Per buyer seen by the cutoff: last order day and last purchase day of each consumable."""
    past = truth.orders.loc[truth.orders["day"] <= start]
    state = truth.people.set_index("person_id").loc[past["person_id"].unique()].copy()
    state["last_day"] = past.groupby("person_id")["day"].max()
    first = past.loc[past["source"] == "first"].set_index("person_id")["day"]
    for index, item in enumerate(CONSUMABLES):
        refills = past.loc[past["consumable"] == index].groupby("person_id")["day"].max()
        bought = first.where(state[f"cycle_{item.category}"].reindex(first.index).notna())
        state[f"last_{item.category}"] = refills.combine(bought.dropna(), np.fmax, fill_value=np.nan)
    return state.reset_index()


def _oracle_batch(truth: ShopTruth, batch: pd.DataFrame, start: float, horizon: float) -> pd.DataFrame:
    """Integrate over the dropout time on a grid aligned to the cutoff (see module docstring)."""
    last = batch["last_day"].to_numpy()
    back = int(np.ceil((start - last.min()) / GRID_STEP_DAYS))
    grid = start + GRID_STEP_DAYS * np.arange(-back, int(np.ceil(horizon / GRID_STEP_DAYS)) + 1)
    u = np.maximum(grid[None, :], last[:, None])  # grid points before the last order collapse onto it
    log_silence = _log_silence(truth, batch, grid, last)
    mu = batch["dropout_rate"].to_numpy()[:, None]
    alive = np.exp(-mu * (u - last[:, None]) + log_silence)
    density = mu * alive
    steps = np.diff(u, axis=1)
    died_by = np.concatenate(
        [np.zeros((len(batch), 1)), np.cumsum(0.5 * (density[:, 1:] + density[:, :-1]) * steps, axis=1)],
        axis=1,
    )
    silent = alive + died_by
    at_cutoff, at_end = back, grid.size - 1
    return pd.DataFrame(
        {
            "person_id": batch["person_id"].to_numpy(),
            "p_alive": alive[:, at_cutoff] / silent[:, at_cutoff],
            "p_purchase": 1.0 - silent[:, at_end] / silent[:, at_cutoff],
        }
    )


def _log_silence(truth: ShopTruth, batch: pd.DataFrame, grid: np.ndarray, last: np.ndarray) -> np.ndarray:
    """log P(no order in (last, u] | alive through u) on the grid: base process, refill chains, campaigns."""
    u = np.maximum(grid[None, :], last[:, None])
    lam = batch["purchase_rate"].to_numpy()[:, None]
    season_mass = cumulative_season(u, truth.as_of) - cumulative_season(last, truth.as_of)[:, None]
    total = -lam * season_mass
    keep_on = batch["replenish_continue"].to_numpy()[:, None]
    for item in CONSUMABLES:
        cycle = batch[f"cycle_{item.category}"].to_numpy()[:, None]
        since = batch[f"last_{item.category}"].to_numpy()[:, None]
        has = ~np.isnan(cycle[:, 0]) & ~np.isnan(since[:, 0])
        if not has.any():
            continue
        survive = 1 - keep_on[has] * replenish_gap_cdf(u[has] - since[has], cycle[has])
        at_last = 1 - keep_on[has] * replenish_gap_cdf(last[has, None] - since[has], cycle[has])
        total[has] += np.log(np.maximum(survive, 1e-300)) - np.log(np.maximum(at_last, 1e-300))
    return total + _campaign_log_silence(truth, batch, grid, last)


def _campaign_log_silence(
    truth: ShopTruth, batch: pd.DataFrame, grid: np.ndarray, last: np.ndarray
) -> np.ndarray:
    exposures = truth.exposures
    row_of = pd.Series(np.arange(len(batch)), index=batch["person_id"].to_numpy())
    mine = exposures.loc[exposures["person_id"].isin(row_of.index)]
    rows = row_of.reindex(mine["person_id"]).to_numpy()
    sent = mine["sent_day"].to_numpy()
    after = sent > last[rows]
    column = np.searchsorted(grid, sent[after], side="left")
    inside = column < grid.size
    steps = np.zeros((len(batch), grid.size))
    np.add.at(
        steps, (rows[after][inside], column[inside]), np.log1p(-mine["p_order"].to_numpy()[after][inside])
    )
    return np.cumsum(steps, axis=1)
