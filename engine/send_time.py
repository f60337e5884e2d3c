"""Best send time per person, corrected for exposure bias.

The naive answer, "the hour this person opens most", mostly learns when the shop sends: opens bunch up
in the first hours after every delivery. Here each delivered email is followed hour by hour while it
sits unopened in the inbox (at most `window_hours`), and the open hazard in each of those inbox-hours
is modelled as

    hazard(person, delay d, hour of week h) = level(person) * delay_effect(d) * shop_pattern(h) * r(person, h)

`delay_effect` soaks up "people open soon after delivery", `shop_pattern` is the shop-wide reading
rhythm, and `r` is the person's own deviation from it: observed opens in hour h divided by the opens
expected from the inbox-hours the person actually had in hour h. Hours in which the person never had
mail waiting carry no evidence, so they stay at the shop pattern. `r` gets a Gamma(k, k) prior
(empirical Bayes shrinkage toward 1), so a person with three opens barely moves away from the shop's
pattern while one with forty opens gets their own.

Exploration: a model fed only by its own recommendations never learns that a person changed habits.
Each row carries `exploration_share`; a caller sends that share of the person's mail at another hour
(`plan_send_hours` does exactly this) and feeds the resulting events back in on the next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from engine._behaviour import HOURS_PER_WEEK, hour_of_week, require_columns
from engine.frames import History

OUTPUT_COLUMNS = (
    "customer_id",
    "best_hour_of_week",
    "second_hour_of_week",
    "third_hour_of_week",
    "best_hour_of_day_utc",
    "timezone",
    "best_weekday_local",
    "best_hour_of_day_local",
    "confidence",
    "exploration_share",
    "n_received",
    "n_opened",
    "model_kind",
)


@dataclass(frozen=True, slots=True)
class SendTimeConfig:
    """Knobs of the send-time model; the defaults suit shops sending a few campaigns a week."""

    window_hours: int = 72  # how long an unopened email is watched for an open
    prior_strength: float = 1.0  # k of the Gamma(k, k) prior on r: pseudo expected-opens per hour
    smoothing: tuple[float, ...] = (0.25, 1.0, 0.25)  # circular kernel over neighbouring hours
    personal_min_opens: int = 10  # below this the answer is labelled shrunk_to_global
    confidence_opens: float = 10.0  # opens at which the evidence part of the confidence reaches 1/2
    exploration_min: float = 0.05
    exploration_max: float = 0.30
    fit_iterations: int = 30
    person_iterations: int = 3


@dataclass(frozen=True, slots=True)
class _Exposure:
    """Inbox-hours and opens of every delivered email.

    An email that was never opened is at risk for the whole window starting at its send hour, the
    same for every recipient, so those are kept as counts per person and send hour (O(people x 168)
    memory whatever the window). Opened emails are expanded hour by hour up to their open; most open
    within the first hour, so that expansion stays small.
    """

    unopened: np.ndarray  # (people, 168): never-opened deliveries by send hour of week
    person: np.ndarray  # opened emails, one row per inbox-hour until the open
    delay: np.ndarray  # hours since delivery
    hour: np.ndarray  # hour of week (UTC) of that inbox-hour
    open_person: np.ndarray
    open_delay: np.ndarray
    open_hour: np.ndarray


@dataclass(frozen=True)
class SendTimeCounts:
    """The shop model's inputs: inbox-hours at risk and opens per (hours since delivery, hour of week).

    Sums over people, so two sets of customers' counts add up to both (exactly: they are whole numbers).
    """

    at_risk: np.ndarray  # (window_hours, 168)
    opens: np.ndarray  # (window_hours, 168)

    def __add__(self, other: SendTimeCounts) -> SendTimeCounts:
        return SendTimeCounts(self.at_risk + other.at_risk, self.opens + other.opens)


@dataclass(frozen=True)
class ShopPattern:
    """The shop-wide part of the model: how opens fall off after delivery, and the week's reading rhythm."""

    delay_effect: np.ndarray
    pattern: np.ndarray


def send_time_counts(history: History, config: SendTimeConfig | None = None) -> SendTimeCounts:
    """The `SendTimeCounts` of the history's people."""
    cfg = config or SendTimeConfig()
    return _counts(_exposure(*_mail(history), cfg.window_hours), cfg)


def fit_shop_pattern(counts: SendTimeCounts, config: SendTimeConfig | None = None) -> ShopPattern:
    """The shop pattern fitted to gathered counts (`_fit_shop_model`)."""
    return ShopPattern(*_fit_shop_model(counts, config or SendTimeConfig()))


def best_send_times(
    history: History, config: SendTimeConfig | None = None, shop: ShopPattern | None = None
) -> pd.DataFrame:
    """One row per customer with the best hours of week to send (UTC), local time where known.

    Uses `history.events` (received / opened / clicked with campaign_id). Every customer in
    `history.customers` gets a row too (people without mail get the shop pattern); when that frame
    has a `timezone` column (IANA name) the local weekday and hour are filled in. `shop` is the whole
    shop's pattern when `history` holds only some of its customers (a chunk); by default it is fitted
    on `history`.
    """
    cfg = config or SendTimeConfig()
    customers = history.frames.customers
    events, people = _mail(history)
    exposure = _exposure(events, people, cfg.window_hours)
    shop = shop or fit_shop_pattern(_counts(exposure, cfg), cfg)
    delay_effect, shop_pattern = shop.delay_effect, shop.pattern
    observed, expected = _person_tables(exposure, len(people), delay_effect, shop_pattern)
    profile = _shrunk_profile(observed, expected, shop_pattern, cfg)
    out = _recommendations(people, profile, observed, events, cfg)
    out = _add_local_time(out, customers, history.cutoff)
    out.attrs["shop_pattern"] = shop_pattern
    return out.loc[:, list(OUTPUT_COLUMNS)]


def _mail(history: History) -> tuple[pd.DataFrame, pd.Index]:
    """Campaign events, and everyone who gets a row: recipients and every known customer."""
    events = history.frames.events
    require_columns(events, ["customer_id", "kind", "occurred_at", "campaign_id"], "events")
    events = events.loc[events["campaign_id"].notna()]
    people = pd.Index(
        pd.unique(
            pd.concat([events["customer_id"], history.frames.customers["customer_id"]], ignore_index=True)
        ),
        name="customer_id",
    )
    return events, people


def _first_times(events: pd.DataFrame, kinds: Sequence[str], name: str) -> pd.DataFrame:
    subset = events.loc[events["kind"].isin(kinds)]
    return (
        subset.groupby(["customer_id", "campaign_id"], as_index=False)["occurred_at"]
        .min()
        .rename(columns={"occurred_at": name})
    )


def _exposure(events: pd.DataFrame, people: pd.Index, window: int) -> _Exposure:
    """Delivered emails as inbox-hours at risk of an open; a click counts as an open (image blocking)."""
    sends = _first_times(events, ["received"], "sent_at")
    opens = _first_times(events, ["opened", "clicked"], "opened_at")
    mail = sends.merge(opens, on=["customer_id", "campaign_id"], how="left")
    delay = (mail["opened_at"] - mail["sent_at"]).dt.total_seconds().to_numpy() / 3600.0
    opened = np.isfinite(delay) & (delay >= 0) & (delay < window)
    person = people.get_indexer(mail["customer_id"])
    send_hour = hour_of_week(mail["sent_at"])
    unopened = np.bincount(
        person[~opened] * HOURS_PER_WEEK + send_hour[~opened], minlength=len(people) * HOURS_PER_WEEK
    ).reshape(len(people), HOURS_PER_WEEK)
    open_delay = np.floor(delay[opened]).astype(np.int64)
    at_risk = open_delay + 1
    starts = np.repeat(np.cumsum(at_risk) - at_risk, at_risk)
    row_delay = np.arange(int(at_risk.sum()), dtype=np.int64) - starts
    row_email = np.repeat(np.arange(int(opened.sum())), at_risk)
    open_send_hour = send_hour[opened]
    return _Exposure(
        unopened=unopened.astype(float),
        person=person[opened][row_email],
        delay=row_delay,
        hour=(open_send_hour[row_email] + row_delay) % HOURS_PER_WEEK,
        open_person=person[opened],
        open_delay=open_delay,
        open_hour=(open_send_hour + open_delay) % HOURS_PER_WEEK,
    )


def _table(delay: np.ndarray, hour: np.ndarray, window: int) -> np.ndarray:
    """Counts per (hours since delivery, hour of week)."""
    flat = np.bincount(delay * HOURS_PER_WEEK + hour, minlength=window * HOURS_PER_WEEK)
    return flat.reshape(window, HOURS_PER_WEEK).astype(float)


def _counts(exposure: _Exposure, cfg: SendTimeConfig) -> SendTimeCounts:
    """Every inbox-hour at risk and every open, by hours since delivery and hour of week."""
    at_risk = _table(exposure.delay, exposure.hour, cfg.window_hours)
    unopened_by_send_hour = exposure.unopened.sum(axis=0)
    for d in range(cfg.window_hours):
        at_risk[d] += np.roll(unopened_by_send_hour, d)
    return SendTimeCounts(at_risk, _table(exposure.open_delay, exposure.open_hour, cfg.window_hours))


def _fit_shop_model(counts: SendTimeCounts, cfg: SendTimeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fit delay_effect(d) * shop_pattern(h) to all inbox-hours by iterative proportional fitting.

    This is the maximum-likelihood Poisson fit of a two-factor model; it separates "opened because it
    just arrived" from "opened because it is the hour people read".
    """
    at_risk, opens = counts.at_risk, counts.opens
    delay_effect = np.ones(cfg.window_hours)
    pattern = np.ones(HOURS_PER_WEEK)
    for _ in range(cfg.fit_iterations):
        delay_effect = (opens.sum(axis=1) + 1e-3) / (at_risk @ pattern + 1e-3)
        pattern = (_smooth(opens.sum(axis=0), cfg.smoothing) + 1e-3) / (
            _smooth(delay_effect @ at_risk, cfg.smoothing) + 1e-3
        )
        pattern /= pattern.mean()
    return delay_effect, pattern


def _smooth(values: np.ndarray, kernel: Sequence[float]) -> np.ndarray:
    """Circular smoothing over the hour-of-week axis (last axis); Sunday 23:00 neighbours Monday 00:00."""
    half = len(kernel) // 2
    out = np.zeros_like(values, dtype=float)
    for offset, weight in zip(range(-half, half + 1), kernel, strict=True):
        out += weight * np.roll(values, offset, axis=-1)
    return out


def _person_tables(
    exposure: _Exposure, n_people: int, delay_effect: np.ndarray, pattern: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Observed opens and shop-model expected opens per person and hour of week."""
    size = n_people * HOURS_PER_WEEK
    weight = delay_effect[exposure.delay] * pattern[exposure.hour]
    expected = np.bincount(exposure.person * HOURS_PER_WEEK + exposure.hour, weights=weight, minlength=size)
    observed = np.bincount(exposure.open_person * HOURS_PER_WEEK + exposure.open_hour, minlength=size)
    shape = (n_people, HOURS_PER_WEEK)
    never_opened = np.zeros(shape)
    for d, effect in enumerate(delay_effect):
        never_opened += effect * np.roll(exposure.unopened, d, axis=1)
    expected = expected.reshape(shape) + never_opened * pattern[None, :]
    return observed.reshape(shape).astype(float), expected


def _shrunk_profile(
    observed: np.ndarray, expected: np.ndarray, pattern: np.ndarray, cfg: SendTimeConfig
) -> np.ndarray:
    """Person reading intensity per hour of week: shop pattern x shrunk hour-of-day x shrunk weekday ratio.

    A person's habit is factorised into an hour of day and a weekday preference, each with its own
    Gamma(k, k) shrinkage toward 1 (the shop pattern). The factorisation matters: late opens reveal the
    hour of day on whatever weekday the mail happened to arrive, and a full 168-hour personal profile
    would spread that evidence thin over seven days. The two ratios are fitted jointly by a few rounds
    of proportional fitting, so a weekday preference is not mistaken for an hour-of-day one.
    """
    total_obs = observed.sum(axis=1, keepdims=True)
    total_exp = expected.sum(axis=1, keepdims=True)
    level = np.divide(total_obs, total_exp, out=np.zeros_like(total_obs), where=total_exp > 0)
    expected = expected * level
    n = len(observed)
    obs_hour = _smooth(observed.reshape(n, 7, 24).sum(axis=1), cfg.smoothing)
    obs_day = observed.reshape(n, 7, 24).sum(axis=2)
    hour_ratio = np.ones((n, 24))
    day_ratio = np.ones((n, 7))
    k_hour = k_day = cfg.prior_strength
    for _ in range(cfg.person_iterations):
        exp_hour = _smooth((expected.reshape(n, 7, 24) * day_ratio[:, :, None]).sum(axis=1), cfg.smoothing)
        hour_ratio = (obs_hour + k_hour) / (exp_hour + k_hour)
        exp_day = (expected.reshape(n, 7, 24) * hour_ratio[:, None, :]).sum(axis=2)
        day_ratio = (obs_day + k_day) / (exp_day + k_day)
    personal = day_ratio[:, :, None] * hour_ratio[:, None, :]
    return personal.reshape(n, HOURS_PER_WEEK) * pattern[None, :]


def _recommendations(
    people: pd.Index, profile: np.ndarray, observed: np.ndarray, events: pd.DataFrame, cfg: SendTimeConfig
) -> pd.DataFrame:
    # Tiny jitter by hour index keeps ties (flat profiles) deterministic instead of platform-dependent.
    order = np.argsort(-(profile - 1e-12 * np.arange(HOURS_PER_WEEK)), axis=1, kind="stable")[:, :3]
    best = order[:, 0]
    n_opened = observed.sum(axis=1)
    peak = profile[np.arange(len(people)), best]
    prominence = 1.0 - np.median(profile, axis=1) / peak
    evidence = n_opened / (n_opened + cfg.confidence_opens)
    confidence = np.clip(evidence * prominence, 0.0, 1.0)
    received = events.loc[events["kind"] == "received"].groupby("customer_id")["campaign_id"].nunique()
    kind = np.where(
        n_opened == 0, "global", np.where(n_opened < cfg.personal_min_opens, "shrunk_to_global", "personal")
    )
    return pd.DataFrame(
        {
            "customer_id": people.to_numpy(),
            "best_hour_of_week": best,
            "second_hour_of_week": order[:, 1],
            "third_hour_of_week": order[:, 2],
            "best_hour_of_day_utc": best % 24,
            "confidence": confidence,
            "exploration_share": cfg.exploration_max
            - (cfg.exploration_max - cfg.exploration_min) * confidence,
            "n_received": received.reindex(people).fillna(0).astype(int).to_numpy(),
            "n_opened": n_opened.astype(int),
            "model_kind": pd.array(kind, dtype="string"),
        }
    )


def _utc_offset_minutes(zone: object, at: pd.Timestamp) -> float:
    """Offset of an IANA zone at `at` (DST-aware); NaN for an unknown or missing zone."""
    if not isinstance(zone, str) or not zone:
        return np.nan
    try:
        offset = at.tz_convert(ZoneInfo(zone)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return np.nan
    return offset.total_seconds() / 60.0 if offset is not None else np.nan


def _add_local_time(out: pd.DataFrame, customers: pd.DataFrame, at: pd.Timestamp) -> pd.DataFrame:
    """Local weekday and hour of the best UTC hour, using each zone's offset at the scoring date."""
    zones = pd.Series(pd.NA, index=out.index, dtype="string")
    if "timezone" in customers.columns:
        lookup = customers.drop_duplicates("customer_id").set_index("customer_id")["timezone"]
        zones = pd.Series(lookup.reindex(out["customer_id"]).to_numpy(), index=out.index, dtype="string")
    offsets = {zone: _utc_offset_minutes(zone, at) for zone in zones.dropna().unique()}
    minutes = zones.map(offsets).astype(float).to_numpy()
    local = np.floor((out["best_hour_of_week"].to_numpy() * 60 + minutes) / 60) % HOURS_PER_WEEK
    known = np.isfinite(local)
    out["timezone"] = zones.where(known, pd.NA)
    out["best_weekday_local"] = pd.array(np.where(known, local // 24, np.nan), dtype="Int64")
    out["best_hour_of_day_local"] = pd.array(np.where(known, local % 24, np.nan), dtype="Int64")
    return out


def plan_send_hours(
    recommendations: pd.DataFrame,
    rng: np.random.Generator,
    allowed_hours: Sequence[int] = tuple(range(HOURS_PER_WEEK)),
) -> pd.DataFrame:
    """Pick one send hour of week (UTC) per customer for the next campaign, exploring on purpose.

    With probability `exploration_share` a customer gets a random allowed hour other than their best
    one (`explore` = True), otherwise their best allowed hour among the top three, else the first allowed
    hour. Logging `explore` with the send lets a later analysis compare exploit vs explore open rates.
    """
    allowed = np.asarray(sorted(set(allowed_hours)), dtype=np.int64)
    if allowed.size == 0 or allowed.min() < 0 or allowed.max() >= HOURS_PER_WEEK:
        raise ValueError(f"allowed_hours: need hours of week in 0..167, got {list(allowed_hours)[:10]}")
    top = recommendations[["best_hour_of_week", "second_hour_of_week", "third_hour_of_week"]].to_numpy()
    in_allowed = np.isin(top, allowed)
    exploit = np.where(
        in_allowed.any(axis=1), top[np.arange(len(top)), in_allowed.argmax(axis=1)], allowed[0]
    )
    explore = rng.random(len(top)) < recommendations["exploration_share"].to_numpy()
    random_hour = allowed[rng.integers(0, allowed.size, len(top))]
    collide = random_hour == exploit
    random_hour[collide] = allowed[(np.searchsorted(allowed, random_hour[collide]) + 1) % allowed.size]
    return pd.DataFrame(
        {
            "customer_id": recommendations["customer_id"].to_numpy(),
            "send_hour_of_week": np.where(explore, random_hour, exploit),
            "explore": explore & (allowed.size > 1),
        }
    )
