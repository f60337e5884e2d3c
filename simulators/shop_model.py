"""The latent model of a synthetic shop: who the people are and the rules their behaviour follows.

Every rule that both the simulation and the oracle need (seasonality, the open probability given a
send hour, the replenishment-gap noise) lives here once, so the oracle scores exactly the process
that generated the data.

Time inside the generator is a float number of days relative to the shop's `as_of` (negative = past).
Hour-of-week is counted in UTC from Monday 00:00 (0..167).

The purchase process is Pareto/NBD at heart (a Poisson rate λ while alive, an exponential dropout with
hazard μ, both Gamma-distributed across people) so an oracle is well defined, with three departures
that a model with features can exploit: a November/December bump, replenishment chains for consumable
categories, and orders triggered by email campaigns (mostly discount offers, for discount-sensitive
people). λ, engagement, discount sensitivity, spend and μ are drawn through a Gaussian copula so that
engaged people buy more and churn less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

HISTORY_DAYS = 1000  # about 2.7 years of history before as_of
FUTURE_DAYS = 365  # simulated after as_of, kept only in the truth
SHOP_GROWTH_PER_DAY = 0.0015  # newer customers are more frequent: the shop grows ~1.7x a year

BUYER_SHARE = 0.85
PLATFORM_SHARE = {"klaviyo": 0.70, "mailchimp": 0.40, "brevo": 0.30}
PROSPECT_ON_SHOPIFY = 0.30
NEVER_SUBSCRIBED = 0.15
UNSUBSCRIBE_SHARE = 0.08  # subscribers who unsubscribe at some point of the email period
BAD_ADDRESS_SHARE = 0.01

# (shape, mean per year) of the Gamma heterogeneity of λ and μ.
PURCHASE_RATE = (0.9, 2.2)
DROPOUT_RATE = (1.2, 0.45)
MEAN_ORDER_VALUE = (4.0, 0.45)  # log-normal: median e^4 ≈ 55, sigma 0.45
ORDER_VALUE_SHAPE = 5.0  # Gamma shape of a single order's value around the person's mean
ENGAGEMENT = (2.5, 3.0)  # Beta: P(open | received at the preferred hour)
DISCOUNT_SENSITIVITY = (1.5, 6.0)  # Beta: P(order | opened a discount campaign, alive)
NON_DISCOUNT_CONVERSION = 0.02  # P(order | opened a campaign without an offer, alive)
REPLENISH_CONTINUE = (8.0, 2.0)  # Beta: P(a consumable buyer re-buys after a purchase)
REPLENISH_CYCLE_SPREAD = 0.2  # person cycle = category cycle * LogNormal(0, this)
REPLENISH_GAP_NOISE = 0.12  # each gap = person cycle * LogNormal(0, this)

SEASON_PEAK_DAY_OF_YEAR = 340.0
SEASON_WIDTH_DAYS = 14.0
SEASON_AMPLITUDE = 0.7
SEASON_MAX = 1.0 + SEASON_AMPLITUDE

# Copula correlations of the latent normals (order: log λ, engagement, spend, discount, log μ).
LATENT_CORRELATION = np.array(
    [
        [1.00, 0.45, -0.10, 0.20, 0.00],
        [0.45, 1.00, 0.00, 0.15, -0.35],
        [-0.10, 0.00, 1.00, 0.00, 0.00],
        [0.20, 0.15, 0.00, 1.00, 0.00],
        [0.00, -0.35, 0.00, 0.00, 1.00],
    ]
)

COUNTRIES: tuple[tuple[str, str, int, float], ...] = (
    # (country, IANA timezone, standard UTC offset in hours, share)
    ("US", "America/New_York", -5, 0.25),
    ("US", "America/Chicago", -6, 0.08),
    ("US", "America/Los_Angeles", -8, 0.12),
    ("CA", "America/Toronto", -5, 0.05),
    ("GB", "Europe/London", 0, 0.14),
    ("DE", "Europe/Berlin", 1, 0.12),
    ("FR", "Europe/Paris", 1, 0.10),
    ("NL", "Europe/Amsterdam", 1, 0.04),
    ("AU", "Australia/Sydney", 10, 0.06),
    ("JP", "Asia/Tokyo", 9, 0.04),
)
# Local reading hours: morning, lunch, evening (hour of day, share).
READING_HOURS = ((7, 0.12), (8, 0.12), (9, 0.08), (12, 0.12), (13, 0.08), (19, 0.14), (20, 0.18), (21, 0.16))


@dataclass(frozen=True, slots=True)
class Consumable:
    category: str
    cycle_days: int
    share: float  # share of buyers who buy it


CONSUMABLES = (
    Consumable("coffee", 30, 0.25),
    Consumable("pet-food", 45, 0.12),
    Consumable("skincare", 60, 0.15),
)
DURABLE_CATEGORIES = ("apparel", "home", "accessories", "outdoor")


def season(days: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """Purchase-rate multiplier (1 .. SEASON_MAX): a bump peaking early December."""
    day_of_year = _day_of_year(days, as_of)
    distance = np.abs(day_of_year - SEASON_PEAK_DAY_OF_YEAR)
    distance = np.minimum(distance, 365.25 - distance)
    return 1.0 + SEASON_AMPLITUDE * np.exp(-0.5 * (distance / SEASON_WIDTH_DAYS) ** 2)


def cumulative_season(days: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """∫ season from -HISTORY_DAYS to `days` (trapezoid on a 0.25-day grid): the Poisson mean per unit λ."""
    grid = np.arange(-HISTORY_DAYS - 1, FUTURE_DAYS + 2, 0.25)
    values = season(grid, as_of)
    integral = np.concatenate([[0.0], np.cumsum((values[1:] + values[:-1]) * 0.125)])
    return np.interp(days, grid, integral)


def _day_of_year(days: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    start_of_year = pd.Timestamp(year=as_of.year, month=1, day=1, tz="UTC")
    offset = (as_of - start_of_year).total_seconds() / 86400.0
    return np.mod(np.asarray(days, dtype=float) + offset, 365.25)


def week_hours(days: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """Fractional UTC hours since Monday 00:00 of as_of's week, for day offsets relative to as_of."""
    monday = as_of.normalize() - pd.Timedelta(days=as_of.weekday())
    return np.asarray(days, dtype=float) * 24.0 + (as_of - monday).total_seconds() / 3600.0


def hour_of_week(days: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """UTC hour of week (Monday 00:00 = 0) of day offsets relative to as_of."""
    return np.mod(np.floor(week_hours(days, as_of)), 168).astype(np.int64)


def send_affinity(preferred_how: np.ndarray, send_how: np.ndarray) -> np.ndarray:
    """How well a send hour suits a reader (0..1): hour of day matters most, the weekday a little."""
    hour_gap = np.abs(np.mod(send_how, 24) - np.mod(preferred_how, 24))
    hour_gap = np.minimum(hour_gap, 24 - hour_gap)
    same_day = (send_how // 24) == (preferred_how // 24)
    return np.exp(-0.5 * (hour_gap / 2.0) ** 2) * np.where(same_day, 1.0, 0.6)


def open_probability(engagement: np.ndarray, preferred_how: np.ndarray, send_how: np.ndarray) -> np.ndarray:
    """P(open | received): the engagement propensity, halved far from the person's reading hour."""
    return engagement * (0.5 + 0.5 * send_affinity(preferred_how, send_how))


def conversion_probability(discount_sensitivity: np.ndarray, discount_offer: np.ndarray) -> np.ndarray:
    """P(order | opened, alive): discount offers convert the discount-sensitive."""
    return np.where(discount_offer, discount_sensitivity, NON_DISCOUNT_CONVERSION)


def replenish_gap_cdf(elapsed: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    """P(the next replenishment gap <= elapsed days) for a person's own cycle."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.maximum(elapsed, 1e-9) / cycle) / REPLENISH_GAP_NOISE
    return np.where(elapsed > 0, stats.norm.cdf(z), 0.0)


def sample_latents(rng: np.random.Generator, n: int, first_id: int) -> pd.DataFrame:
    """Draw n people's latent truth (one row each, ids first_id..first_id+n-1)."""
    frame = pd.DataFrame({"person_id": np.arange(first_id, first_id + n, dtype=np.int64)})
    normals = rng.standard_normal((n, 5)) @ np.linalg.cholesky(LATENT_CORRELATION).T
    uniforms = stats.norm.cdf(normals)
    shape, per_year = PURCHASE_RATE
    frame["purchase_rate"] = stats.gamma.ppf(uniforms[:, 0], shape, scale=per_year / shape / 365.0)
    frame["engagement"] = stats.beta.ppf(uniforms[:, 1], *ENGAGEMENT)
    frame["mean_order_value"] = np.exp(MEAN_ORDER_VALUE[0] + MEAN_ORDER_VALUE[1] * normals[:, 2])
    frame["discount_sensitivity"] = stats.beta.ppf(uniforms[:, 3], *DISCOUNT_SENSITIVITY)
    shape, per_year = DROPOUT_RATE
    frame["dropout_rate"] = stats.gamma.ppf(uniforms[:, 4], shape, scale=per_year / shape / 365.0)
    frame["is_buyer"] = rng.random(n) < BUYER_SHARE
    frame["created_day"] = _growing_arrival_days(rng, n)
    lifetime = rng.exponential(1.0 / frame["dropout_rate"].to_numpy())
    frame["dropout_day"] = np.where(frame["is_buyer"], frame["created_day"] + lifetime, np.nan)
    _add_geography(frame, rng)
    _add_consumables(frame, rng)
    frame["favourite_category"] = rng.integers(0, len(DURABLE_CATEGORIES), n)
    _add_platforms(frame, rng)
    return frame


def _growing_arrival_days(rng: np.random.Generator, n: int) -> np.ndarray:
    """First-seen days in [-HISTORY_DAYS, 0) with density ∝ exp(growth·t): the shop is growing."""
    g = SHOP_GROWTH_PER_DAY
    low = np.exp(-g * HISTORY_DAYS)
    return np.log(low + rng.random(n) * (1.0 - low)) / g


def _add_geography(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    shares = np.array([c[3] for c in COUNTRIES])
    index = rng.choice(len(COUNTRIES), size=len(frame), p=shares / shares.sum())
    frame["country"] = np.array([c[0] for c in COUNTRIES])[index]
    frame["timezone"] = np.array([c[1] for c in COUNTRIES])[index]
    offset = np.array([c[2] for c in COUNTRIES])[index]
    hours, weights = zip(*READING_HOURS, strict=True)
    local_hour = rng.choice(hours, size=len(frame), p=np.array(weights) / sum(weights))
    local_day = rng.integers(0, 7, len(frame))
    frame["preferred_hour_of_week"] = np.mod(local_day * 24 + local_hour - offset, 168)


def _add_consumables(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    n = len(frame)
    frame["replenish_continue"] = rng.beta(*REPLENISH_CONTINUE, n)
    for item in CONSUMABLES:
        buys = frame["is_buyer"].to_numpy() & (rng.random(n) < item.share)
        cycle = item.cycle_days * np.exp(REPLENISH_CYCLE_SPREAD * rng.standard_normal(n))
        frame[f"cycle_{item.category}"] = np.where(buys, cycle, np.nan)


def _add_platforms(frame: pd.DataFrame, rng: np.random.Generator) -> None:
    """Shopify holds every buyer; each ESP a different subset; prospects sit on at least one ESP."""
    n = len(frame)
    buyer = frame["is_buyer"].to_numpy()
    on = {name: rng.random(n) < share for name, share in PLATFORM_SHARE.items()}
    on_none = ~(on["klaviyo"] | on["mailchimp"] | on["brevo"])
    on["klaviyo"] = on["klaviyo"] | (on_none & ~buyer)
    for name, member in on.items():
        frame[f"on_{name}"] = member
    frame["on_shopify"] = buyer | (rng.random(n) < PROSPECT_ON_SHOPIFY)
    frame["never_subscribed"] = rng.random(n) < NEVER_SUBSCRIBED
    frame["bad_address"] = rng.random(n) < BAD_ADDRESS_SHARE
    wants_out = ~frame["never_subscribed"].to_numpy() & (rng.random(n) < UNSUBSCRIBE_SHARE)
    frame["unsubscribe_after_day"] = np.where(wants_out, rng.uniform(-FUTURE_DAYS, FUTURE_DAYS, n), np.inf)
