"""Simulate one chunk of a shop's people, vectorized, into public frames and truth frames.

A chunk is independent of the others given the shop-level catalogue and campaign schedule, and its
random stream is seeded by (shop seed, chunk index), so a shop of any size is generated (or streamed to
disk) chunk by chunk with bounded memory and the same result every time.

Times in the returned frames are timezone-aware UTC timestamps. Everything after `as_of` (the
simulated future year) lands only in the truth frames.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from simulators.shop_email import campaign_schedule, simulate_email
from simulators.shop_model import CONSUMABLES, FUTURE_DAYS, sample_latents
from simulators.shop_orders import catalogue, fill_orders, order_times

FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Katherine", "Barbara", "Dennis", "Edsger", "Frances", "Guido",
    "Hedy", "Ivan", "Joan", "Ken", "Lynn", "Margaret", "Niklaus", "Ole", "Radia", "Sophie",
)  # fmt: skip
LAST_NAMES = (
    "Example", "Sample", "Tester", "Demo", "Fixture", "Mock", "Placeholder", "Dummy", "Specimen",
    "Prototype", "Trial", "Pilot",
)  # fmt: skip
DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
PLATFORM_COLUMNS = ("klaviyo", "mailchimp", "brevo", "shopify")
SIZES = {"tiny": 200, "small": 5_000, "medium": 100_000, "large": 1_000_000}
CHUNK_SIZE = 5_000
CURRENCY = "USD"


@dataclass(slots=True)
class ShopChunk:
    people: pd.DataFrame
    orders: pd.DataFrame
    lines: pd.DataFrame
    events: pd.DataFrame
    truth: pd.DataFrame  # one row per person: the latent parameters and realized outcomes
    all_orders: pd.DataFrame  # past and future orders with their source (truth only)
    exposures: pd.DataFrame  # past and future receipts with P(order) for the oracle


def shop_size(size: str | int) -> int:
    """Number of people for a size name or count; a clear error for anything else."""
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    if isinstance(size, str) and size in SIZES:
        return SIZES[size]
    raise ValueError(f"shop size must be one of {sorted(SIZES)} or a positive int, got {size!r}")


def default_as_of(as_of: datetime | None) -> pd.Timestamp:
    """Today's UTC midnight by default; a naive datetime is refused rather than guessed."""
    if as_of is None:
        return pd.Timestamp.now(tz="UTC").normalize()
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware (UTC), got a naive datetime")
    return pd.Timestamp(as_of).tz_convert("UTC")


def shop_plan(seed: int, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The shop-level (products, campaigns) every chunk shares."""
    shop_rng = np.random.default_rng([seed, 0xC0FFEE])
    products = catalogue(shop_rng)
    return products, campaign_schedule(shop_rng, as_of)


def iter_chunks(
    n: int, seed: int, as_of: pd.Timestamp, plan: tuple[pd.DataFrame, pd.DataFrame]
) -> Iterator[ShopChunk]:
    """Yield the shop's chunks, CHUNK_SIZE people at a time (ids 1..n)."""
    products, campaigns = plan
    for index, first in enumerate(range(0, n, CHUNK_SIZE)):
        count = min(CHUNK_SIZE, n - first)
        yield simulate_chunk(seed, index, first + 1, count, as_of, campaigns, products)


def simulate_chunk(
    seed: int,
    chunk_index: int,
    first_id: int,
    n: int,
    as_of: pd.Timestamp,
    campaigns: pd.DataFrame,
    products: pd.DataFrame,
) -> ShopChunk:
    rng = np.random.default_rng([seed, chunk_index])
    latents = sample_latents(rng, n, first_id)
    email = simulate_email(rng, latents, campaigns, as_of)
    moments = order_times(rng, latents, as_of)
    conversions = email.conversions.assign(source="email", consumable=-1)
    orders, lines = fill_orders(rng, pd.concat([moments, conversions], ignore_index=True), latents, products)
    orders["ordered_at"] = to_time(orders["day"], as_of)
    past = orders["day"].to_numpy() <= 0
    public_orders = _public_orders(orders.loc[past], as_of)
    public_lines = lines.loc[lines["order_id"].isin(public_orders["order_id"])].reset_index(drop=True)
    events = email.events
    events["occurred_at"] = to_time(events["day"], as_of)
    events = events.sort_values("occurred_at", kind="stable", ignore_index=True)
    people = _public_people(latents, email.unsubscribed_day, orders.loc[past], as_of)
    truth = _truth_people(latents, orders, email.unsubscribed_day)
    return ShopChunk(
        people=people,
        orders=public_orders,
        lines=public_lines,
        events=events[["person_id", "campaign_id", "kind", "occurred_at"]],
        truth=truth,
        all_orders=orders[
            ["order_id", "person_id", "ordered_at", "day", "source", "consumable", "total"]
        ].assign(cancelled=orders["cancelled_day"].notna().to_numpy()),
        exposures=email.exposures,
    )


def to_time(days: pd.Series | np.ndarray, as_of: pd.Timestamp) -> pd.Series:
    """Day offsets from as_of -> UTC timestamps rounded to whole seconds (NaN -> NaT)."""
    index = days.index if isinstance(days, pd.Series) else None
    seconds = np.round(np.asarray(days, dtype=float) * 86400.0)
    return pd.Series(as_of + pd.to_timedelta(seconds, unit="s"), index=index)


def _public_orders(orders: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """What the shop knows at as_of: cancellations and updates that happened by then."""
    frame = orders.copy()
    cancelled = frame["cancelled_day"].to_numpy()
    cancelled = np.where(cancelled <= 0, cancelled, np.nan)
    frame["cancelled_at"] = to_time(pd.Series(cancelled, index=frame.index), as_of)
    frame["updated_at"] = to_time(np.minimum(frame["updated_day"], 0.0), as_of)
    frame["updated_at"] = frame[["updated_at", "ordered_at"]].max(axis=1)
    return frame[
        [
            "order_id",
            "person_id",
            "ordered_at",
            "updated_at",
            "total",
            "discount_total",
            "discount_code",
            "cancelled_at",
        ]
    ].reset_index(drop=True)


def _public_people(
    latents: pd.DataFrame, unsubscribed_day: pd.Series, past_orders: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    ids = latents["person_id"].to_numpy()
    first = np.array(FIRST_NAMES)[ids % len(FIRST_NAMES)]
    last = np.array(LAST_NAMES)[(ids // len(FIRST_NAMES)) % len(LAST_NAMES)]
    domain = np.array(DOMAINS)[(ids * 7) % len(DOMAINS)]
    email = (
        pd.Series(first).str.lower()
        + "."
        + pd.Series(last).str.lower()
        + "."
        + ids.astype(str)
        + "@"
        + domain
    )
    unsub = unsubscribed_day.to_numpy()
    consent = np.where(
        latents["never_subscribed"], "never_subscribed", np.where(unsub <= 0, "unsubscribed", "subscribed")
    )
    last_order = past_orders.groupby("person_id")["updated_day"].max().reindex(ids).to_numpy()
    unsub_past = np.where(unsub <= 0, unsub, np.nan)
    touched = np.fmax(np.fmax(latents["created_day"].to_numpy(), np.fmin(last_order, 0.0)), unsub_past)
    platforms = [
        ",".join(p for p, on in zip(PLATFORM_COLUMNS, row, strict=True) if on)
        for row in latents[[f"on_{p}" for p in PLATFORM_COLUMNS]].to_numpy()
    ]
    return pd.DataFrame(
        {
            "person_id": ids,
            "email": email.to_numpy(),
            "first_name": first,
            "last_name": last,
            "country": latents["country"].to_numpy(),
            "timezone": latents["timezone"].to_numpy(),
            "created_at": to_time(latents["created_day"], as_of).to_numpy(),
            "updated_at": to_time(touched, as_of).to_numpy(),
            "platforms": platforms,
            "email_consent": consent,
        }
    )


def _truth_people(latents: pd.DataFrame, orders: pd.DataFrame, unsubscribed_day: pd.Series) -> pd.DataFrame:
    """Latent parameters plus realized outcomes; never served by a simulator."""
    truth = latents.drop(columns=["never_subscribed", "bad_address", "unsubscribe_after_day"]).copy()
    truth["unsubscribed_day"] = unsubscribed_day.to_numpy()
    live = orders.loc[orders["cancelled_day"].isna()]
    future = live.loc[(live["day"] > 0) & (live["day"] <= FUTURE_DAYS)]
    truth["future_orders_365"] = (
        future.groupby("person_id").size().reindex(truth["person_id"]).fillna(0).to_numpy()
    )
    truth["future_spend_365"] = (
        future.groupby("person_id")["total"].sum().reindex(truth["person_id"]).fillna(0.0).to_numpy()
    )
    past = orders.loc[orders["day"] <= 0]
    share = (past["discount_total"] > 0).groupby(past["person_id"]).mean()
    truth["discounted_order_share"] = share.reindex(truth["person_id"]).to_numpy()
    truth["consumables"] = _consumable_lists(truth)
    return truth


def _consumable_lists(truth: pd.DataFrame) -> list[str]:
    cycles = truth[[f"cycle_{c.category}" for c in CONSUMABLES]].to_numpy()
    return [
        ",".join(c.category for c, v in zip(CONSUMABLES, row, strict=True) if not np.isnan(v))
        for row in cycles
    ]


def public_campaigns(campaigns: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Campaigns sent by as_of, as the platforms show them (no exploration flag, no future)."""
    sent = campaigns.loc[campaigns["sent_day"] <= 0]
    seconds = np.round(sent["sent_day"].to_numpy() * 86400).astype("int64")
    return pd.DataFrame(
        {
            "campaign_id": sent["campaign_id"].to_numpy(),
            "platform": sent["platform"].to_numpy(),
            "name": sent["name"].to_numpy(),
            "sent_at": as_of + pd.to_timedelta(seconds, unit="s"),
            "discount_offer": sent["discount_offer"].to_numpy(),
            "discount_code": sent["discount_code"].to_numpy(),
        }
    )
