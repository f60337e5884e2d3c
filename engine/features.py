"""Point-in-time features per buyer, computed from a `History` (so only from rows before its cutoff).

One row per customer with at least one order before the cutoff, indexed by customer_id. Every column
is a float; NaN means "unknown" (LightGBM routes it), never "zero". The BG/NBD and Gamma-Gamma
outputs are features too: they are fitted on the same history, and LightGBM then earns its keep by
correcting them with what they cannot see (engagement, discounts, trends, seasonality of habits).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from engine.baseline import Baseline, fit_baseline
from engine.engagement import engagement_features
from engine.frames import History
from engine.replenishment import GapStats, gap_stats, item_cycles, replenishment_posteriors

DAY = pd.Timedelta(days=1)
BTYD_HORIZONS = (30, 90, 365)
EVENT_RATES = ("open_rate_90", "click_rate_90", "days_since_open", "days_since_click", "last10_open_share")
EVENT_YEAR = ("opened_365", "clicked_365", "open_rate_365", "click_rate_365")
SINCE_ORDER = ("received_since_order", "opened_since_order", "clicked_since_order", "offers_since_order")
REFILL_HORIZONS = (30, 90)
REFILL_WINDOW = ("refill_habit_alive", *(f"refill_within_{d}" for d in REFILL_HORIZONS))


def _days_before(cutoff: pd.Timestamp, times: pd.Series) -> pd.Series:
    return (cutoff - times) / DAY


def _order_features(history: History) -> pd.DataFrame:
    orders = history.orders.sort_values(["customer_id", "ordered_at"], kind="stable")
    cutoff = history.cutoff
    by = orders.groupby("customer_id", sort=True)
    age = _days_before(cutoff, orders["ordered_at"])
    gaps = orders["ordered_at"].diff().where(orders["customer_id"].eq(orders["customer_id"].shift())) / DAY
    recent, older = age <= 90, (age > 90) & (age <= 180)
    hour = orders["ordered_at"].dt.hour + orders["ordered_at"].dt.minute / 60.0
    per_order = pd.DataFrame(
        {
            "customer_id": orders["customer_id"],
            "gap": gaps,
            "spend_90": orders["amount"].where(recent, 0.0),
            "spend_prev_90": orders["amount"].where(older, 0.0),
            "orders_30": (age <= 30).astype(float),
            "orders_90": recent.astype(float),
            "orders_365": (age <= 365).astype(float),
            "discounted": (orders["discount"] > 0).astype(float),
            "weekend": (orders["ordered_at"].dt.day_of_week >= 5).astype(float),
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
        }
    ).groupby("customer_id", sort=True)
    last = by["ordered_at"].max()
    feats = pd.DataFrame(
        {
            "recency_days": _days_before(cutoff, last),
            "first_order_days": _days_before(cutoff, by["ordered_at"].min()),
            "n_orders": by.size().astype(float),
            "monetary_total": by["amount"].sum(),
            "monetary_mean": by["amount"].mean(),
            "monetary_max": by["amount"].max(),
            "monetary_last": by["amount"].last(),
            "discount_amount_share": by["discount"].sum() / (by["amount"].sum() + by["discount"].sum()),
        }
    )
    sums = per_order[["spend_90", "spend_prev_90", "orders_30", "orders_90", "orders_365"]].sum()
    means = per_order[["discounted", "weekend", "hour_sin", "hour_cos"]].mean()
    feats = feats.join(sums).join(means.rename(columns={"discounted": "discount_share"}))
    feats["spend_trend"] = feats.pop("spend_90") - feats.pop("spend_prev_90")
    feats["ipt_mean"] = per_order["gap"].mean()
    feats["ipt_std"] = per_order["gap"].std()
    feats["ipt_last"] = per_order["gap"].last()
    feats["recency_over_ipt"] = feats["recency_days"] / feats["ipt_mean"].where(feats["ipt_mean"] > 0)
    return feats


def _line_features(history: History, index: pd.Index) -> pd.DataFrame:
    lines = history.frames.lines
    if lines.empty:
        return pd.DataFrame(index=index)
    value = lines["price"].fillna(lines["quantity"])
    cat_spend = value.groupby([lines["customer_id"], lines["category"]]).sum()
    by_customer = cat_spend.groupby(level=0)
    by = lines.groupby("customer_id", sort=True)
    feats = pd.DataFrame(
        {
            "n_categories": by["category"].nunique().astype(float),
            "n_products": by["product_id"].nunique().astype(float),
            "items_per_order": by["quantity"].sum() / by["order_id"].nunique(),
            "top_category_share": by_customer.max() / by_customer.sum().where(by_customer.sum() > 0),
        }
    )
    return feats.reindex(index)


def _event_features(history: History, index: pd.Index) -> pd.DataFrame:
    """Email engagement, from the one owner of engagement features (`engine.engagement`).

    Counts are of distinct campaigns (an open includes a click); buyers who never received mail get
    zero counts and unknown (NaN) rates and recencies.
    """
    if history.frames.events.empty:
        return pd.DataFrame(index=index)
    feats = engagement_features(history).reindex(index)
    feats = feats.rename(
        columns={"days_since_opened": "days_since_open", "days_since_clicked": "days_since_click"}
    )
    counts = ["received_90", "opened_90", "clicked_90", "received_365", "bounced", "unsubscribed"]
    feats[counts] = feats[counts].fillna(0.0)
    feats[["opened_365", "clicked_365"]] = feats[["opened_365", "clicked_365"]].fillna(0.0)
    return feats[[*counts, *EVENT_RATES, *EVENT_YEAR]]


def _since_order_features(history: History, index: pd.Index) -> pd.DataFrame:
    """Campaigns received, opened and clicked, and discount offers received, since the last order.

    Many orders follow an opened campaign (most of all an opened offer), so mail that reached a buyer
    after their last order without bringing one back says more than yearly rates do: ten unanswered
    offers is a quiet "no". Counts are of distinct campaigns; buyers never mailed get zeros.
    """
    events = history.frames.events
    if events.empty:
        return pd.DataFrame(0.0, index=index, columns=list(SINCE_ORDER))
    # Integer codes: the string ids are hashed once, not again in every groupby below.
    who = index.get_indexer(events["customer_id"])
    order_age = _days_before(history.cutoff, history.orders.groupby("customer_id")["ordered_at"].max())
    event_age = _days_before(history.cutoff, events["occurred_at"]).to_numpy()
    since = (event_age > 0) & (who >= 0)
    since[since] = event_age[since] < order_age.reindex(index).to_numpy()[who[since]]
    campaign, names = pd.factorize(events["campaign_id"])
    recent = pd.DataFrame(
        {"who": who[since], "campaign": campaign[since], "kind": events["kind"].to_numpy()[since]}
    )
    recent = recent.loc[recent["campaign"] >= 0]
    campaigns = history.frames.campaigns
    offer = pd.Index(names).isin(campaigns.loc[campaigns["discount_offer"].astype(bool), "campaign_id"])
    out = pd.DataFrame(index=pd.RangeIndex(len(index)))
    for name, rows in (
        ("received", recent["kind"].eq("received")),
        ("opened", recent["kind"].isin(("opened", "clicked"))),
        ("clicked", recent["kind"].eq("clicked")),
        ("offers", recent["kind"].eq("received") & offer[recent["campaign"].to_numpy()]),
    ):
        picked = recent.loc[rows]
        out[f"{name}_since_order"] = picked.groupby("who")["campaign"].nunique()
    return out.fillna(0.0).set_axis(index)


def _refills(history: History, cycles: pd.DataFrame) -> pd.DataFrame:
    """Each buyer's items on a refill cycle (category level), with the posterior gap distribution."""
    if history.frames.lines.empty:
        return pd.DataFrame()
    return replenishment_posteriors(history, level="category", cycles=cycles)


def _replenishment_features(due: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The customer's next refill of a category the shop's buyers re-buy on a cycle.

    Refills are a large, well-timed share of orders in shops with consumables: how soon the next one is
    due, and how far past their usual cycle the customer already is (3x means the habit probably ended).
    """
    if due.empty:
        return pd.DataFrame(index=index)
    elapsed = due["elapsed_days"]
    due = due.assign(ratio=elapsed / due["cycle_days"]).sort_values("due_in_days", kind="stable")
    soonest = due.groupby("customer_id", sort=True).first()
    return pd.DataFrame(
        {
            "refill_due_days": soonest["due_in_days"],
            "refill_cycle_ratio": soonest["ratio"],
            "refill_items": due.groupby("customer_id", sort=True).size().astype(float),
        }
    ).reindex(index)


def _gap_cdf(due: pd.DataFrame, days: np.ndarray) -> np.ndarray:
    """P(the gap since the last purchase of the row's item is at most `days`), log-normal posterior."""
    z = (np.log(np.maximum(days, 1e-9)) - due["log_cycle"].to_numpy()) / due["log_spread"].to_numpy()
    return norm.cdf(z)


def _refill_window_features(due: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """How likely a refill habit brings an order within 30 / 90 days, and whether any habit still runs.

    The soonest due date alone says little when a customer re-buys several items, and a date is a poor
    input for "within the horizon": the chance that at least one item's gap ends in the window, given it
    has not ended yet, is what the purchase and churn labels ask (if the habit goes on). How much of
    the gap distribution has already passed (`refill_habit_alive`, the largest over items) is the
    evidence that the habit, or the customer, has stopped.
    """
    if due.empty:
        return pd.DataFrame(index=index, columns=list(REFILL_WINDOW), dtype="float64")
    elapsed = due["elapsed_days"].to_numpy()
    waiting = np.maximum(1.0 - _gap_cdf(due, elapsed), 1e-12)
    who = due["customer_id"].to_numpy()
    out = {"refill_habit_alive": pd.Series(waiting).groupby(who).max()}
    for days in REFILL_HORIZONS:
        ends = (_gap_cdf(due, elapsed + days) - (1.0 - waiting)) / waiting
        out[f"refill_within_{days}"] = 1.0 - pd.Series(1.0 - ends).groupby(who).prod()
    return pd.DataFrame(out).reindex(index)[list(REFILL_WINDOW)]


def _other_order_features(history: History, index: pd.Index, cycles: pd.DataFrame) -> pd.DataFrame:
    """Orders with at least one item off every refill cycle: the buying a refill habit does not explain.

    A refill habit makes a customer look frequent and recent to the order counts and to BG/NBD; the
    other orders measure the rest of their buying, which stops only when they do.
    """
    orders, lines = history.orders, history.frames.lines
    off_cycle = (~lines["category"].isin(cycles["item"])).groupby(lines["order_id"]).any()
    # An order without lines is not explained by a habit either: only all-refill orders are left out.
    other = orders.loc[~orders["order_id"].isin(off_cycle.index[~off_cycle.to_numpy()])]
    by = other.groupby("customer_id", sort=True)["ordered_at"]
    return pd.DataFrame(
        {
            "other_orders": by.size().reindex(index).fillna(0.0).astype(float),
            "other_recency_days": _days_before(history.cutoff, by.max()).reindex(index),
        },
        index=index,
    )


# The shop-wide repeat rates: (days before the cutoff the window starts, its length in days).
RATE_WINDOWS = {"shop_rate_prev_30": (30, 30), "shop_rate_ly_30": (365, 30), "shop_rate_ly_90": (365, 90)}


@dataclass(frozen=True)
class ShopWide:
    """What the features of one customer need from the others: the category refill cycles and the
    shop's repeat rates (`shop_totals(history).shop_wide()` on the whole shop)."""

    cycles: pd.DataFrame
    rates: dict[str, float]


@dataclass(frozen=True)
class ShopTotals:
    """The counts `ShopWide` is computed from. Those of disjoint sets of customers add up, so a shop
    read in customer chunks gets, summed over its chunks, exactly the whole shop's."""

    gaps: GapStats
    known: pd.Series  # rate name -> buyers known at the window's start
    bought: pd.Series  # rate name -> of those, buyers who ordered in the window

    def __add__(self, other: ShopTotals) -> ShopTotals:
        return ShopTotals(self.gaps + other.gaps, self.known + other.known, self.bought + other.bought)

    def shop_wide(self) -> ShopWide:
        """Repeat rates are NaN before any data (nobody known at a window's start)."""
        rates = {name: float(self.bought[name] / self.known[name]) if self.known[name] else float("nan")
                 for name in RATE_WINDOWS}  # fmt: skip
        return ShopWide(item_cycles(self.gaps), rates)


def shop_totals(history: History) -> ShopTotals:
    """Repeat rates: the last 30 days, and the coming 30 / 90 days one year earlier, as counts.

    The same season last year tells the model how busy the window it predicts usually is (a January
    after a December peak), which a per-customer history and the calendar alone cannot.
    """
    orders = history.orders
    first = orders.groupby("customer_id")["ordered_at"].min()
    known, bought = {}, {}
    for name, (back, days) in RATE_WINDOWS.items():
        start = history.cutoff - back * DAY
        ids = first.index[first < start]
        window = orders["ordered_at"].ge(start) & orders["ordered_at"].lt(start + days * DAY)
        known[name] = len(ids)
        bought[name] = int(ids.isin(orders.loc[window, "customer_id"]).sum())  # hashed: fast on 100k ids
    return ShopTotals(gap_stats(history, level="category"), pd.Series(known), pd.Series(bought))


def _customer_features(history: History, index: pd.Index) -> pd.DataFrame:
    customers = history.frames.customers.set_index("customer_id")["created_at"]
    created = customers.reindex(index)
    return pd.DataFrame({"account_age_days": _days_before(history.cutoff, created)}, index=index)


def _btyd_features(baseline: Baseline, index: pd.Index) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "frequency": baseline.summary["frequency"],
            "T_days": baseline.summary["T"],
            "btyd_p_alive": baseline.p_alive(),
            "gg_order_value": baseline.order_value(),
        }
        | {f"btyd_exp_{h}": baseline.expected_orders(h) for h in BTYD_HORIZONS},
        index=baseline.summary.index,
    )
    return out.reindex(index)


FEATURE_COLUMNS: tuple[str, ...] = (
    "recency_days", "first_order_days", "n_orders", "monetary_total", "monetary_mean", "monetary_max",
    "monetary_last", "discount_amount_share", "orders_30", "orders_90", "orders_365", "discount_share",
    "weekend", "hour_sin", "hour_cos", "spend_trend", "ipt_mean", "ipt_std", "ipt_last", "recency_over_ipt",
    "n_categories", "n_products", "items_per_order", "top_category_share",
    "received_90", "opened_90", "clicked_90", "received_365", "bounced", "unsubscribed", *EVENT_RATES,
    *EVENT_YEAR, *SINCE_ORDER,
    "account_age_days",
    "frequency", "T_days", "btyd_p_alive", *(f"btyd_exp_{h}" for h in BTYD_HORIZONS), "gg_order_value",
    "season_sin", "season_cos", "refill_due_days", "refill_cycle_ratio", "refill_items", *REFILL_WINDOW,
    "other_orders", "other_recency_days",
    "shop_rate_prev_30", "shop_rate_ly_30", "shop_rate_ly_90",
)  # fmt: skip


def build_features(
    history: History, baseline: Baseline | None = None, shop: ShopWide | None = None
) -> pd.DataFrame:
    """The feature matrix of every buyer known at `history.cutoff`, columns exactly `FEATURE_COLUMNS`.

    Pass the `baseline` already fitted on the same history to avoid fitting it twice. When `history`
    holds only some customers of a shop (a chunk, `engine.chunks`), pass the `baseline` and `shop`
    of the whole shop: the features are then exactly those of the whole history.
    """
    baseline = baseline or fit_baseline(history)
    shop = shop or shop_totals(history).shop_wide()
    base = _order_features(history)
    index = base.index
    due = _refills(history, shop.cycles)
    parts = [
        base,
        _line_features(history, index),
        _event_features(history, index),
        _since_order_features(history, index),
        _customer_features(history, index),
        _replenishment_features(due, index),
        _refill_window_features(due, index),
        _other_order_features(history, index, shop.cycles),
        _btyd_features(baseline, index),
    ]
    feats = pd.concat(parts, axis=1)
    # The cutoff's time of year: rolling cutoffs span seasons, so the model can learn the shop's cycle.
    day_of_year = 2 * np.pi * history.cutoff.day_of_year / 365.25
    feats["season_sin"], feats["season_cos"] = np.sin(day_of_year), np.cos(day_of_year)
    for name, value in shop.rates.items():
        feats[name] = value
    return feats.reindex(columns=list(FEATURE_COLUMNS)).astype("float64")
