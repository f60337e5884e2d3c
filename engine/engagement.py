"""Engagement: P(opens at least one email in the next 30 days), and the same for clicks.

A LightGBM classifier on point-in-time engagement features, trained on rolling cutoffs. For scoring at
T with horizon H the cutoffs are T - H (holdout), T - 2H and T - 3H (calibration), T - 4H, ... (training);
features see only events before their cutoff, labels only events in [cutoff, cutoff + H), and every
slice is cut from the history with `past_at`, so no label window reaches past T. Probabilities are
Platt-calibrated on the calibration cutoff, and the whole procedure is judged on the holdout against
the simple baseline (the customer's shrunk open or click rate of the last 90 days, calibrated the
same way). LightGBM is used only when it beats the baseline on both ROC AUC and Brier; the scoring
model is then refitted one horizon later (calibration at T - H and T - 2H, training before).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine._behaviour import band, beta_prior, require_columns, shrunk_rate
from engine.calibration import Calibrator, fit_platt
from engine.frames import History
from engine.labels import past_at
from engine.metrics import binary_metrics

Target = Literal["open", "click"]
TARGET_KINDS: dict[str, tuple[str, ...]] = {"open": ("opened", "clicked"), "click": ("clicked",)}
WINDOWS = (30, 90, 365)
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True, slots=True)
class EngagementConfig:
    horizon_days: int = 30
    n_train_cutoffs: int = 4
    # Calibration pools several months: P(any open in 30 days) moves with how many campaigns a month
    # brings, which the features cannot know, so one month's volume would bias every probability.
    n_calibration_cutoffs: int = 2
    min_rows: int = 200  # training rows (customer x cutoff) below which the baseline is used
    min_positives: int = 20
    num_boost_round: int = 150
    # One thread: on a few thousand rows per cutoff, a second thread on a busy 2-core box costs more in
    # spinning than it saves (measured 10x slower under load).
    num_threads: int = 1
    seed: int = 7


@dataclass
class EngagementResult:
    """Scores per customer plus what the holdout said about the model and the baseline."""

    scores: pd.DataFrame
    holdout: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fitted:
    booster: lgb.Booster | None
    calibrator: Calibrator
    baseline_calibrator: Calibrator


def engagement_features(history: History) -> pd.DataFrame:
    """Point-in-time engagement features of everyone who received mail before `history.cutoff`."""
    events = history.frames.events
    require_columns(events, ["customer_id", "kind", "occurred_at", "campaign_id"], "events")
    cutoff = history.cutoff
    # `history_at` already cut these; filtering again keeps a hand-built History from leaking.
    events, ids = _coded(events.loc[events["occurred_at"] < cutoff])
    age = (cutoff - events["occurred_at"]) / DAY
    received = events["kind"] == "received"
    audience = pd.Index(events.loc[received, "customer_id"].unique(), name="customer_id")
    by_kind = {
        name: events.loc[events["kind"].isin(kinds)].assign(age=age)
        for name, kinds in (
            ("received", ("received",)),
            ("opened", TARGET_KINDS["open"]),
            ("clicked", ("clicked",)),
        )
    }
    feats = pd.DataFrame(index=audience)
    for name, rows in by_kind.items():
        for window in WINDOWS:
            recent = rows.loc[rows["age"] <= window]
            feats[f"{name}_{window}"] = recent.groupby("customer_id")["campaign_id"].nunique()
        feats[f"days_since_{name}"] = rows.groupby("customer_id")["age"].min()
    feats = feats.fillna({c: 0.0 for c in feats.columns if not c.startswith("days_since")})
    for window in (90, 365):
        feats[f"open_rate_{window}"] = feats[f"opened_{window}"] / feats[f"received_{window}"].replace(
            0, np.nan
        )
        feats[f"click_rate_{window}"] = feats[f"clicked_{window}"] / feats[f"received_{window}"].replace(
            0, np.nan
        )
    feats["days_since_first_received"] = by_kind["received"].groupby("customer_id")["age"].max()
    feats["last10_open_share"] = _last_opened_share(events, 10).reindex(audience)
    for kind in ("unsubscribed", "bounced"):
        feats[kind] = audience.isin(events.loc[events["kind"] == kind, "customer_id"]).astype(float)
    orders = history.orders.loc[history.orders["ordered_at"] < cutoff]
    order_age = (cutoff - orders["ordered_at"]) / DAY
    buyer = ids.get_indexer(orders["customer_id"])
    feats["orders_365"] = (
        order_age[order_age <= 365].groupby(buyer[order_age <= 365]).size().reindex(audience)
    )
    feats["orders_365"] = feats["orders_365"].fillna(0)
    feats["days_since_order"] = order_age.groupby(buyer).min().reindex(audience)
    feats.index = pd.Index(ids[feats.index], name="customer_id")
    # In customer order, not the order rows came in: LightGBM's sums follow the row order, so a store
    # returning rows in another order (or a shop read in chunks) would move the scores in the 8th digit.
    return feats.astype(float).sort_index(kind="stable")


def _coded(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
    """Events with integer customer and campaign codes (and the customer ids they stand for).

    Grouping 4M events of a 100k-customer shop by string ids re-hashes the strings in every groupby;
    integers make the whole feature build several times faster.
    """
    customers, ids = pd.factorize(events["customer_id"])
    campaigns, _ = pd.factorize(events["campaign_id"])
    coded = pd.DataFrame(
        {
            "customer_id": customers,
            "kind": events["kind"],
            "occurred_at": events["occurred_at"],
            "campaign_id": np.where(campaigns < 0, np.nan, campaigns),
        },
        index=events.index,
    )
    return coded, pd.Index(ids)


def _last_opened_share(events: pd.DataFrame, n: int) -> pd.Series:
    """Share of the customer's last n received campaigns that were opened or clicked."""
    sent = events.loc[events["kind"] == "received", ["customer_id", "campaign_id", "occurred_at"]]
    last = sent.sort_values("occurred_at").groupby("customer_id").tail(n)
    opened = events.loc[events["kind"].isin(TARGET_KINDS["open"]), ["customer_id", "campaign_id"]]
    keys = pd.MultiIndex.from_frame(opened.drop_duplicates())
    hit = pd.MultiIndex.from_frame(last[["customer_id", "campaign_id"]]).isin(keys)
    return pd.Series(hit.astype(float), index=last["customer_id"].to_numpy()).groupby(level=0).mean()


def _baseline_rate(
    features: pd.DataFrame, target: Target, prior: tuple[float, float] | None = None
) -> np.ndarray:
    """The customer's recent open (click) rate, shrunk toward the shop's: the rule to beat.

    `prior` is the shop's (`_baseline_prior`) when `features` are only some of its customers.
    """
    hits, trials = _recent(features, target)
    return shrunk_rate(hits, trials, prior or beta_prior(hits, trials))


def _recent(features: pd.DataFrame, target: Target) -> tuple[np.ndarray, np.ndarray]:
    hits = features["opened_90" if target == "open" else "clicked_90"].to_numpy()
    return hits, features["received_90"].to_numpy()


def _baseline_prior(features: pd.DataFrame, target: Target) -> tuple[float, float]:
    return beta_prior(*_recent(features, target))


def _labels(
    history: History, cutoff: pd.Timestamp, index: pd.Index, target: Target, horizon: int
) -> np.ndarray:
    """1 when the customer opened (clicked) anything in [cutoff, cutoff + horizon), read via `past_at`."""
    later = past_at(history, cutoff + horizon * DAY).frames.events
    window = later.loc[(later["occurred_at"] >= cutoff) & later["kind"].isin(TARGET_KINDS[target])]
    return index.isin(window["customer_id"]).astype(float)


class _Slices:
    """Features and labels per cutoff, computed once and shared by both targets and both fits."""

    def __init__(self, history: History, horizon: int) -> None:
        self.history, self.horizon = history, horizon
        self._features: dict[pd.Timestamp, pd.DataFrame] = {}

    def features(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        if cutoff not in self._features:
            self._features[cutoff] = engagement_features(past_at(self.history, cutoff))
        return self._features[cutoff]

    def labelled(self, cutoffs: list[pd.Timestamp], target: Target) -> tuple[pd.DataFrame, np.ndarray]:
        if not cutoffs:
            return pd.DataFrame(), np.zeros(0)
        frames = [self.features(c) for c in cutoffs]
        labels = [
            _labels(self.history, c, f.index, target, self.horizon)
            for c, f in zip(cutoffs, frames, strict=True)
        ]
        return pd.concat(frames), np.concatenate(labels) if labels else np.zeros(0)


def _fit(
    slices: _Slices,
    train: list[pd.Timestamp],
    calibration: list[pd.Timestamp],
    target: Target,
    cfg: EngagementConfig,
) -> _Fitted:
    X, y = slices.labelled(train, target)
    X_cal, y_cal = slices.labelled(calibration, target)
    base_cal = fit_platt(_baseline_rate(X_cal, target), y_cal)
    if len(y) < cfg.min_rows or y.sum() < cfg.min_positives or (len(y) - y.sum()) < cfg.min_positives:
        return _Fitted(None, base_cal, base_cal)
    params = {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 15,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.9,
        "num_threads": cfg.num_threads,
        "seed": cfg.seed,
        "deterministic": True,
        "verbosity": -1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=cfg.num_boost_round)
    return _Fitted(booster, fit_platt(booster.predict(X_cal), y_cal), base_cal)


def _predict(
    fitted: _Fitted,
    features: pd.DataFrame,
    target: Target,
    use_model: bool,
    prior: tuple[float, float] | None = None,
) -> np.ndarray:
    if use_model and fitted.booster is not None:
        return fitted.calibrator.apply(fitted.booster.predict(features))
    return fitted.baseline_calibrator.apply(_baseline_rate(features, target, prior))


def _judge(
    slices: _Slices, cutoffs: list[pd.Timestamp], target: Target, cfg: EngagementConfig
) -> tuple[dict[str, dict[str, float]], bool, str]:
    """Fit on the oldest cutoffs, calibrate on the next ones, compare with the baseline on the newest."""
    n_cal = cfg.n_calibration_cutoffs
    holdout, calibration, train = cutoffs[0], cutoffs[1 : 1 + n_cal], cutoffs[1 + n_cal :]
    fitted = _fit(slices, train, calibration, target, cfg)
    X_h, y_h = slices.labelled([holdout], target)
    if len(np.unique(y_h)) < 2:
        return {}, False, "the holdout has a single class; shrunk recent rate used"
    base = binary_metrics(y_h, _predict(fitted, X_h, target, use_model=False))
    if fitted.booster is None:
        return {"baseline": base}, False, "too little training data for LightGBM; shrunk recent rate used"
    model = binary_metrics(y_h, _predict(fitted, X_h, target, use_model=True))
    wins = model["roc_auc"] > base["roc_auc"] and model["brier"] < base["brier"]
    verdict = "beat" if wins else "did not beat"
    reason = (
        f"LightGBM {verdict} the recent-rate baseline on the holdout "
        f"(ROC AUC {model['roc_auc']:.3f} vs {base['roc_auc']:.3f}, "
        f"Brier {model['brier']:.4f} vs {base['brier']:.4f})"
    )
    return {"lightgbm": model, "baseline": base}, wins, reason


@dataclass(frozen=True)
class EngagementModel:
    """The fitted scoring models per target, and the shop's prior for the recent-rate baseline."""

    fitted: dict[str, _Fitted]
    use_model: dict[str, bool]
    priors: dict[str, tuple[float, float]]
    holdout: dict[str, dict[str, dict[str, float]]]
    reasons: dict[str, str]
    horizon_days: int


def fit_engagement(history: History, config: EngagementConfig | None = None) -> EngagementModel:
    """Judge, then fit, the models of both targets on `history`: the whole shop, or a uniform sample of
    its customers (the first chunks of a shop read in chunks). Every step of the fit pools customers
    (training rows, calibration, the baseline's prior), so a sample's model estimates the shop's.
    """
    cfg = config or EngagementConfig()
    step = cfg.horizon_days * DAY
    cutoffs = [
        history.cutoff - k * step for k in range(1, cfg.n_train_cutoffs + cfg.n_calibration_cutoffs + 2)
    ]
    slices = _Slices(history, cfg.horizon_days)
    current = engagement_features(history)
    model = EngagementModel({}, {}, {}, {}, {}, cfg.horizon_days)
    for target in ("open", "click"):
        holdout, use_model, reason = _judge(slices, cutoffs, target, cfg)
        model.holdout[target], model.reasons[target] = holdout, reason
        # The same procedure one horizon later, ending at T instead of T - H.
        n_cal = cfg.n_calibration_cutoffs
        train = cutoffs[n_cal:-1] if use_model else []
        fitted = _fit(slices, train, cutoffs[:n_cal], target, cfg)
        model.fitted[target] = fitted
        model.use_model[target] = use_model and fitted.booster is not None
        model.priors[target] = _baseline_prior(current, target)
    return model


def predict_engagement(model: EngagementModel, history: History) -> EngagementResult:
    """P(open) and P(click) of everyone in `history` who ever received mail, with a fitted model."""
    current = engagement_features(history)
    result = EngagementResult(
        scores=pd.DataFrame({"customer_id": current.index.to_numpy()}),
        holdout=model.holdout,
        reasons=model.reasons,
    )
    kinds = []
    for target in ("open", "click"):
        use_model = model.use_model[target]
        # A chunk may hold nobody with mail; LightGBM refuses to predict zero rows.
        result.scores[f"p_{target}_{model.horizon_days}d"] = (
            _predict(model.fitted[target], current, target, use_model, model.priors[target])
            if len(current)
            else np.zeros(0)
        )
        kinds.append("lightgbm" if use_model else "baseline_recent_rate")
    result.scores["engagement_band"] = band(result.scores[f"p_open_{model.horizon_days}d"])
    result.scores["model_kind"] = kinds[0] if kinds[0] == kinds[1] else f"open:{kinds[0]},click:{kinds[1]}"
    return result


def score_engagement(history: History, config: EngagementConfig | None = None) -> EngagementResult:
    """P(open) and P(click) in the next `horizon_days` for everyone who ever received mail.

    Customers without any mail get no row: there is nothing to engage with.
    """
    return predict_engagement(fit_engagement(history, config), history)
