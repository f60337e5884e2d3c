"""Email campaigns and what people do with them, reproducing the send-time exposure bias.

Each ESP sends its campaigns at the shop's fixed slot (a small share explores other hours), and every
subscribed member receives them. Most opens come within the first hour after delivery, whatever the
reader's habit; the rest come at the reader's next daily reading hour. The reading habit shows only in
*whether* someone opens a send at a given hour and in the timing of the late opens, so the naive "hour
with most opens" learns the shop's slot, not the person (see shared/notes/engine.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulators.shop_model import (
    FUTURE_DAYS,
    conversion_probability,
    hour_of_week,
    open_probability,
    send_affinity,
    week_hours,
)

EMAIL_PERIOD_DAYS = 365  # campaigns exist for the last year (and the simulated future year)
EXPLORE_SHARE = 0.15
DISCOUNT_SHARE = 0.3
CAMPAIGN_DISCOUNT = 0.15


@dataclass(frozen=True, slots=True)
class SendSlot:
    platform: str
    hour_of_week: int  # UTC, Monday 00:00 = 0
    every_weeks: int


SEND_SLOTS = (
    SendSlot("klaviyo", 1 * 24 + 10, 1),  # Tuesday 10:00 UTC
    SendSlot("mailchimp", 3 * 24 + 10, 2),  # Thursday 10:00 UTC
    SendSlot("brevo", 5 * 24 + 9, 2),  # Saturday 09:00 UTC
)
IMMEDIATE_OPEN_MINUTES = 25.0
CLICK_GIVEN_OPEN = (0.10, 0.20)  # base + slope on engagement


def campaign_schedule(rng: np.random.Generator, as_of: pd.Timestamp) -> pd.DataFrame:
    """Every campaign of the shop, past year and simulated future year (day offsets from as_of)."""
    monday_day = -(as_of - (as_of.normalize() - pd.Timedelta(days=as_of.weekday()))).total_seconds() / 86400
    rows = []
    for slot in SEND_SLOTS:
        weeks = np.arange(-60, 60, slot.every_weeks)
        days = monday_day + 7 * weeks + slot.hour_of_week / 24.0
        explore = rng.random(len(days)) < EXPLORE_SHARE
        random_how = rng.integers(0, 168, len(days))
        days = np.where(explore, monday_day + 7 * weeks + random_how / 24.0, days)
        keep = (days >= -EMAIL_PERIOD_DAYS) & (days < FUTURE_DAYS)
        rows.append(
            pd.DataFrame({"platform": slot.platform, "sent_day": days[keep], "explore": explore[keep]})
        )
    frame = pd.concat(rows, ignore_index=True).sort_values(["sent_day", "platform"], ignore_index=True)
    frame["discount_offer"] = rng.random(len(frame)) < DISCOUNT_SHARE
    number = frame.groupby("platform").cumcount() + 1
    frame["campaign_id"] = frame["platform"] + "-c" + number.map("{:04d}".format)
    frame["discount_code"] = np.where(
        frame["discount_offer"], "EMAIL15-" + frame["campaign_id"].str.upper(), None
    )
    frame["name"] = np.where(frame["discount_offer"], "15% off this week", "News from the shop")
    frame["name"] = frame["name"] + " #" + number.astype(str)
    frame["sent_how"] = hour_of_week(frame["sent_day"].to_numpy(), as_of)
    return frame


@dataclass(slots=True)
class EmailOutcome:
    """What one chunk of people did with the campaigns."""

    events: (
        pd.DataFrame
    )  # person_id, campaign_id, kind, day; only those by as_of (ids: add_event_ids_and_urls)
    exposures: pd.DataFrame  # person_id, campaign_id, sent_day, p_order (for the oracle)
    conversions: pd.DataFrame  # person_id, day, campaign_id, discount_code
    unsubscribed_day: pd.Series  # per person_id, inf when never


def simulate_email(
    rng: np.random.Generator, people: pd.DataFrame, campaigns: pd.DataFrame, as_of: pd.Timestamp
) -> EmailOutcome:
    receipts = _receipts(people, campaigns)
    receipts, bounces = _split_bounces(receipts)
    receipts = _apply_unsubscribes(receipts)
    n = len(receipts)
    p_open = open_probability(
        receipts["engagement"].to_numpy(),
        receipts["preferred_how"].to_numpy(),
        receipts["sent_how"].to_numpy(),
    )
    opened = (rng.random(n) < p_open) | receipts["unsubscribes"].to_numpy()
    open_day = receipts["sent_day"].to_numpy() + _open_delay_days(rng, receipts, as_of)
    p_convert = conversion_probability(
        receipts["discount_sensitivity"].to_numpy(), receipts["discount_offer"].to_numpy()
    )
    alive = (open_day < receipts["dropout_day"].to_numpy()) & receipts["is_buyer"].to_numpy()
    converts = opened & alive & (rng.random(n) < p_convert)
    click_rate = CLICK_GIVEN_OPEN[0] + CLICK_GIVEN_OPEN[1] * receipts["engagement"].to_numpy()
    clicked = opened & ((rng.random(n) < click_rate) | converts)
    click_day = open_day + rng.exponential(3.0, n) / 1440.0
    order_day = click_day + rng.exponential(20.0, n) / 1440.0
    unsub_day = open_day + rng.exponential(2.0, n) / 1440.0

    parts = [
        _events(receipts, np.ones(n, bool), receipts["sent_day"].to_numpy(), "received"),
        _events(receipts, opened, open_day, "opened"),
        _events(receipts, clicked, click_day, "clicked"),
        _events(receipts, receipts["unsubscribes"].to_numpy(), unsub_day, "unsubscribed"),
        bounces,
    ]
    events = pd.concat(parts, ignore_index=True)
    buyers = receipts["is_buyer"].to_numpy()
    exposures = receipts.loc[buyers, ["person_id", "campaign_id", "sent_day"]].reset_index(drop=True)
    exposures["p_order"] = (p_open * p_convert)[buyers]
    conversions = pd.DataFrame(
        {
            "person_id": receipts["person_id"].to_numpy()[converts],
            "day": order_day[converts],
            "campaign_id": receipts["campaign_id"].to_numpy()[converts],
            "discount_code": receipts["discount_code"].to_numpy()[converts],
        }
    )
    unsubscribed = pd.Series(
        unsub_day[receipts["unsubscribes"].to_numpy()],
        index=receipts["person_id"].to_numpy()[receipts["unsubscribes"].to_numpy()],
    )
    unsubscribed_day = unsubscribed.reindex(people["person_id"].to_numpy()).fillna(np.inf)
    return EmailOutcome(events, exposures, conversions, unsubscribed_day)


def _receipts(people: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Every (subscribed member, campaign) pair of each ESP, from the member's creation on."""
    columns = [
        "person_id",
        "created_day",
        "engagement",
        "discount_sensitivity",
        "preferred_hour_of_week",
        "dropout_day",
        "is_buyer",
        "bad_address",
        "unsubscribe_after_day",
    ]
    parts = []
    for slot in SEND_SLOTS:
        members = people.loc[people[f"on_{slot.platform}"] & ~people["never_subscribed"], columns]
        sends = campaigns.loc[campaigns["platform"] == slot.platform]
        pairs = members.merge(sends, how="cross")
        parts.append(pairs.loc[pairs["sent_day"] >= pairs["created_day"]])
    receipts = pd.concat(parts, ignore_index=True).rename(columns={"preferred_hour_of_week": "preferred_how"})
    return receipts.sort_values(["person_id", "sent_day"], ignore_index=True)


def _split_bounces(receipts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A bad address bounces its first send on each platform and is suppressed afterwards."""
    bad = receipts.loc[receipts["bad_address"]]
    first = bad.groupby(["person_id", "platform"], sort=False).head(1)
    bounces = _events(first, np.ones(len(first), bool), first["sent_day"].to_numpy() + 1e-4, "bounced")
    return receipts.loc[~receipts["bad_address"]].reset_index(drop=True), bounces


def _apply_unsubscribes(receipts: pd.DataFrame) -> pd.DataFrame:
    """Whoever decided to leave unsubscribes from the first send after that day, on any platform."""
    after = receipts["sent_day"].to_numpy() >= receipts["unsubscribe_after_day"].to_numpy()
    rank = pd.Series(after).groupby(receipts["person_id"].to_numpy()).cumsum().to_numpy()
    receipts = receipts.loc[rank <= 1].reset_index(drop=True)
    receipts["unsubscribes"] = (receipts["sent_day"] >= receipts["unsubscribe_after_day"]).to_numpy()
    return receipts


def _open_delay_days(rng: np.random.Generator, receipts: pd.DataFrame, as_of: pd.Timestamp) -> np.ndarray:
    """Right after delivery (more so at a good hour), else at the reader's next daily reading hour."""
    n = len(receipts)
    preferred = receipts["preferred_how"].to_numpy()
    sent_how = receipts["sent_how"].to_numpy()
    immediate = rng.random(n) < 0.65 + 0.3 * send_affinity(preferred, sent_how)
    quick = rng.exponential(IMMEDIATE_OPEN_MINUTES, n) / 1440.0
    hour_now = np.mod(week_hours(receipts["sent_day"].to_numpy(), as_of), 24)
    wait_hours = np.mod(np.mod(preferred, 24) - hour_now, 24)
    extra_days = rng.geometric(0.7, n) - 1
    late = (wait_hours + rng.random(n) + 24.0 * extra_days) / 24.0
    return np.where(immediate, quick, late)


def _events(receipts: pd.DataFrame, mask: np.ndarray, day: np.ndarray, kind: str) -> pd.DataFrame:
    """Events of one kind that happened by as_of (later ones are never served, so never built)."""
    mask = mask & (np.asarray(day) <= 0)
    chosen = receipts.loc[mask]
    return pd.DataFrame(
        {
            "person_id": chosen["person_id"].to_numpy(),
            "campaign_id": chosen["campaign_id"].to_numpy(),
            "kind": kind,
            "day": np.asarray(day)[mask],
        }
    )


def add_event_ids_and_urls(frame: pd.DataFrame) -> pd.DataFrame:
    """event_id = campaign:person:kind (one event of a kind per receipt); clicks link to the campaign page.

    Derived, so they are added only where the records are served: the in-memory shop and
    `shop_files.read_table` (the streamed `large` files do not store them).
    """
    frame["event_id"] = frame["campaign_id"] + ":" + frame["person_id"].astype(str) + ":" + frame["kind"]
    clicked = frame["kind"] == "clicked"
    frame["url"] = ("https://shop.example.com/c/" + frame["campaign_id"]).where(clicked, None)
    return frame
