"""Discount sensitivity: does this customer buy because of a discount?

Two pieces of evidence, each shrunk toward the shop (beta-binomial empirical Bayes):

* the share of their orders that carried a discount;
* their response to offers: the conversion rate after opening a discount campaign minus the rate after
  opening a campaign without one. The difference, not the raw rate, is what separates "buys when
  offered a discount" from "buys a lot anyway".

Each shrunk estimate is placed on the shop's scale (a z-score against the spread across customers),
the lift enters with a smaller weight (`response_weight`), and the sum, standardised again, is mapped
to [0, 1] with the normal CDF: 0.5 is a typical customer of this shop, 0.9 is more discount-driven than
about nine in ten. Bands cut at 1/3 and 2/3. A customer with no evidence at all scores 0.5,
`model_kind` = population_prior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from engine._behaviour import band, beta_prior, require_columns, shrunk_rate
from engine.frames import History

OUTPUT_COLUMNS = (
    "customer_id",
    "discount_score",
    "discount_band",
    "discount_order_share",
    "discount_response",
    "plain_response",
    "n_orders",
    "n_discount_orders",
    "n_offers_opened",
    "n_plain_opened",
    "model_kind",
)


@dataclass(frozen=True, slots=True)
class DiscountConfig:
    conversion_window_days: float = 3.0  # an order this soon after opening a campaign counts as a response
    response_weight: float = 0.3  # weight of the offer-response lift next to the discount order share


def discount_sensitivity(
    history: History, campaigns: pd.DataFrame | None = None, config: DiscountConfig | None = None
) -> pd.DataFrame:
    """One row per customer who ordered or opened a campaign before the cutoff.

    `campaigns` (campaign_id, discount_offer) says which campaigns carried an offer; it defaults to
    the history's own campaigns frame. Without any campaigns only the order-share evidence is used.
    """
    cfg = config or DiscountConfig()
    return score_discount(discount_evidence(history, campaigns, cfg), cfg)


def discount_evidence(
    history: History, campaigns: pd.DataFrame | None = None, config: DiscountConfig | None = None
) -> pd.DataFrame:
    """The per-customer counts the score is read from (index customer_id, sorted): orders, discounted
    orders, opened offers and plain campaigns and how many of each converted.

    Each customer's counts need only their own rows, so a shop read in chunks gathers them chunk by
    chunk; the scoring (`score_discount`) needs them all, as its priors and scales are the shop's.
    """
    cfg = config or DiscountConfig()
    campaigns = history.frames.campaigns if campaigns is None else campaigns
    orders = history.orders
    require_columns(orders, ["customer_id", "ordered_at", "discount"], "orders")
    out = _order_share(orders).join(_responses(history, campaigns, cfg), how="outer").fillna(0.0)
    out.index.name = "customer_id"
    return out


def score_discount(evidence: pd.DataFrame, config: DiscountConfig | None = None) -> pd.DataFrame:
    """The scores of every customer in `evidence` (`discount_evidence`, or several of them concatenated)."""
    cfg = config or DiscountConfig()
    evidence = evidence.sort_index(kind="stable")
    return _score(evidence.copy(), cfg.response_weight).reset_index().loc[:, list(OUTPUT_COLUMNS)]


def _order_share(orders: pd.DataFrame) -> pd.DataFrame:
    by = orders.assign(discounted=(orders["discount"] > 0).astype(float)).groupby("customer_id")
    return pd.DataFrame({"n_orders": by.size().astype(float), "n_discount_orders": by["discounted"].sum()})


def _responses(history: History, campaigns: pd.DataFrame, cfg: DiscountConfig) -> pd.DataFrame:
    """Opened campaigns per customer, split by offer, and how many were followed by an order."""
    columns = ["n_offers_opened", "n_offers_converted", "n_plain_opened", "n_plain_converted"]
    events = history.frames.events
    if campaigns.empty or events.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    require_columns(campaigns, ["campaign_id", "discount_offer"], "campaigns")
    opens = (
        events.loc[events["kind"].isin(["opened", "clicked"]) & events["campaign_id"].notna()]
        .groupby(["customer_id", "campaign_id"], as_index=False)["occurred_at"]
        .min()
    )
    offer = campaigns.drop_duplicates("campaign_id").set_index("campaign_id")["discount_offer"].astype(bool)
    opens = opens.assign(offer=opens["campaign_id"].map(offer)).dropna(subset=["offer"])
    opens["converted"] = _ordered_within(opens, history.orders, cfg.conversion_window_days)
    opens["offer"] = opens["offer"].astype(bool)
    by = opens.groupby(["customer_id", "offer"])["converted"].agg(["size", "sum"]).unstack("offer")
    by = by.reindex(columns=pd.MultiIndex.from_product([["size", "sum"], [True, False]])).fillna(0.0)
    return pd.DataFrame(
        {
            "n_offers_opened": by[("size", True)],
            "n_offers_converted": by[("sum", True)],
            "n_plain_opened": by[("size", False)],
            "n_plain_converted": by[("sum", False)],
        }
    )


def _ordered_within(opens: pd.DataFrame, orders: pd.DataFrame, days: float) -> np.ndarray:
    """Whether the customer placed an order in (open, open + days]: the next order after each open."""
    if opens.empty:
        return np.zeros(0, dtype=float)
    left = opens[["customer_id", "occurred_at"]].reset_index().sort_values("occurred_at")
    right = orders[["customer_id", "ordered_at"]].sort_values("ordered_at")
    matched = pd.merge_asof(
        left,
        right,
        left_on="occurred_at",
        right_on="ordered_at",
        by="customer_id",
        direction="forward",
        tolerance=pd.Timedelta(days=days),
    ).set_index("index")
    return matched["ordered_at"].notna().reindex(opens.index).to_numpy(dtype=float)


def _standardised(values: np.ndarray, has_evidence: np.ndarray) -> np.ndarray:
    """Position on the shop's scale: (value - mean) / spread, over customers with evidence."""
    pool = values[has_evidence] if has_evidence.any() else values
    spread = float(np.std(pool))
    return (values - float(np.mean(pool))) / spread if spread > 1e-12 else np.zeros_like(values)


def _score(frame: pd.DataFrame, response_weight: float) -> pd.DataFrame:
    n_orders, n_disc = frame["n_orders"].to_numpy(), frame["n_discount_orders"].to_numpy()
    offers = (frame["n_offers_converted"].to_numpy(), frame["n_offers_opened"].to_numpy())
    plain = (frame["n_plain_converted"].to_numpy(), frame["n_plain_opened"].to_numpy())
    share_prior, offer_prior = beta_prior(n_disc, n_orders), beta_prior(*offers)
    frame["discount_order_share"] = shrunk_rate(n_disc, n_orders, share_prior)
    frame["discount_response"] = shrunk_rate(*offers, offer_prior)
    frame["plain_response"] = shrunk_rate(*plain, beta_prior(*plain))
    lift = frame["discount_response"].to_numpy() - frame["plain_response"].to_numpy()
    has_orders, has_offers = n_orders > 0, offers[1] > 0
    # Shrinkage already pulls thin evidence toward the shop mean (z near 0); the response lift gets a
    # smaller weight because an order after an opened offer also depends on being an active buyer.
    z = _standardised(frame["discount_order_share"].to_numpy(), has_orders)
    z = z + response_weight * _standardised(lift, has_offers)
    frame["discount_score"] = norm.cdf(_standardised(z, has_orders | has_offers))
    frame["discount_band"] = band(frame["discount_score"])
    frame["model_kind"] = np.select(
        [has_orders & has_offers, has_orders, has_offers],
        ["orders_and_response", "orders_only", "response_only"],
        default="population_prior",
    )
    for column in ("n_orders", "n_discount_orders", "n_offers_opened", "n_plain_opened"):
        frame[column] = frame[column].astype(int)
    return frame
