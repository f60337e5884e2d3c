"""LightGBM models trained on rolling cutoffs, calibrated and promoted only when they beat the baseline.

For a model with horizon H scoring at date D, the cutoffs are D - H, D - H - step, ...; the latest one
is the holdout (labelled with the last H days before D), the older ones are the training set. A fixed
fifth of the customers (by id) is never trained on: it drives early stopping and, pooled over every
training cutoff, fits the calibration. Pooling over a year of cutoffs matters: one month's level
(a busy December) would bias every probability of the next. The calibrated model is then judged on
the holdout against the baseline fitted at the same cutoff. Only a model that wins is promoted;
otherwise the baseline scores and `reason` says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.backend import LOCAL, Backend
from engine.baseline import Baseline, fit_baseline
from engine.calibration import Calibrator, fit_calibrator
from engine.features import FEATURE_COLUMNS
from engine.frames import History
from engine.labels import label_frame, past_at, training_cutoffs
from engine.metrics import binary_metrics, calibration_curve, count_metrics, gains_curve, spend_metrics

ModelKind = Literal["lightgbm", "baseline"]


@dataclass(frozen=True)
class ModelSpec:
    """What one model predicts: a label column over its own horizon, and the baseline it must beat."""

    name: str
    target: Literal["bought", "n_orders", "spend"]
    objective: Literal["binary", "poisson", "tweedie"]
    horizon_days: int


@dataclass(frozen=True)
class TrainingConfig:
    """Knobs of the rolling-cutoff training; defaults suit a shop with a year or more of history."""

    min_buyers: int = 200
    n_cutoffs: int = 13
    step_days: int = 30
    min_history_days: int = 60
    # One thread: on a shared 2-core box a second LightGBM thread spins more than it works.
    num_threads: int = 1
    # Beyond this many customer x cutoff rows, train on a stable sample of customers (100k-customer shops).
    max_train_rows: int = 300_000
    seed: int = 7


@dataclass
class TrainedModel:
    spec: ModelSpec
    kind: ModelKind
    reason: str
    booster: lgb.Booster | None = None
    calibrator: Calibrator | None = None
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    window: tuple[str, str] | None = None
    n_train: int = 0
    # Holdout curves of the promoted kind's prediction, kept so a registry can show them without the data.
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Features and baseline of the buyers known at one cutoff (not the cut frames: 16 copies of a
    100k-customer shop's events would cost gigabytes)."""

    cutoff: pd.Timestamp
    features: pd.DataFrame
    baseline: Baseline


class SnapshotCache:
    """Features per cutoff are shared by every model whose cutoffs land on the same date."""

    def __init__(self, history: History, backend: Backend = LOCAL) -> None:
        self.history = history
        self.backend = backend
        self._cache: dict[pd.Timestamp, Snapshot] = {}

    def at(self, cutoff: pd.Timestamp) -> Snapshot:
        if cutoff not in self._cache:
            past = past_at(self.history, cutoff)
            baseline = fit_baseline(past)
            self._cache[cutoff] = Snapshot(cutoff, self.backend.features(past, baseline), baseline)
        return self._cache[cutoff]


def baseline_prediction(spec: ModelSpec, baseline: Baseline) -> np.ndarray:
    """The baseline's answer to the same question a model spec asks."""
    column = {"bought": "p_purchase", "n_orders": "expected_orders", "spend": "expected_spend"}[spec.target]
    return baseline.predict(spec.horizon_days)[column].to_numpy()


def evaluate(spec: ModelSpec, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    scorer: Callable[[np.ndarray, np.ndarray], dict[str, float]] = {
        "bought": binary_metrics,
        "n_orders": count_metrics,
        "spend": spend_metrics,
    }[spec.target]
    return scorer(y, pred)


def beats_baseline(spec: ModelSpec, model: dict[str, float], base: dict[str, float]) -> tuple[bool, str]:
    """The promotion rule: a proper score must improve (and, for probabilities, the ranking too)."""
    checks = {
        "bought": [("brier", False), ("roc_auc", True)],
        "n_orders": [("poisson_deviance", False)],
        "spend": [("spend_rmse", False)],
    }[spec.target]
    lost = [
        f"{name} {model[name]:.4f} vs baseline {base[name]:.4f}"
        for name, higher in checks
        if not (model[name] > base[name] if higher else model[name] < base[name])
    ]
    if lost:
        return False, "LightGBM did not beat the baseline on the holdout: " + "; ".join(lost)
    won = ", ".join(f"{n} {model[n]:.4f} vs {base[n]:.4f}" for n, _ in checks)
    return True, f"LightGBM beat the baseline on the holdout ({won})"


def holdout_curves(spec: ModelSpec, y: np.ndarray, pred: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Gains for every model, calibration for probabilities only (counts and spend are not on [0, 1])."""
    gains = gains_curve(y, pred)
    curves = {"gains": {c: gains[c].tolist() for c in ("customers", "captured")}}
    if spec.target == "bought":
        calibration = calibration_curve(y, pred)
        curves["calibration"] = {c: calibration[c].tolist() for c in ("mean_p", "rate")}
    return curves


def importance_shares(booster: lgb.Booster) -> dict[str, float]:
    """Each feature's share of the total split gain, largest first (what a person reads as "drivers")."""
    gain = pd.Series(booster.feature_importance(importance_type="gain"), index=booster.feature_name())
    shares = (gain / max(float(gain.sum()), 1e-12)).sort_values(ascending=False)
    return {str(name): float(share) for name, share in shares.items() if share > 0}


def _buckets(index: pd.Index, n: int) -> np.ndarray:
    """A stable bucket per customer id, so splits are deterministic and never split a customer."""
    return (pd.util.hash_pandas_object(index.to_series(), index=False).to_numpy() % n).astype(int)


def _lgb_params(spec: ModelSpec, n_rows: int, config: TrainingConfig) -> dict[str, object]:
    return {
        "objective": spec.objective,
        "learning_rate": 0.1,
        "max_bin": 63,
        "num_leaves": 15,
        "min_data_in_leaf": int(np.clip(n_rows // 200, 20, 200)),
        "feature_fraction": 0.8,
        "lambda_l2": 1.0,
        "num_threads": config.num_threads,
        "deterministic": True,
        "force_row_wise": True,
        "seed": config.seed,
        "verbose": -1,
    }


def stack_cutoffs(
    spec: ModelSpec, cache: SnapshotCache, cutoffs: list[pd.Timestamp], max_rows: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and labels of every cutoff, on a stable sample of customers when there are too many."""
    frames, labels = [], []
    for cutoff in cutoffs:
        snap = cache.at(cutoff)
        y = label_frame(cache.history, cutoff, spec.horizon_days, snap.features.index)[spec.target]
        frames.append(snap.features)
        labels.append(y.to_numpy())
    X, y_all = pd.concat(frames), np.concatenate(labels)

    if len(X) > max_rows:
        keep = _buckets(X.index, 1000) < int(1000 * max_rows / len(X))
        X, y_all = X[keep], y_all[keep]
    return X[list(FEATURE_COLUMNS)], y_all


def validation_rows(X: pd.DataFrame) -> np.ndarray:
    """The fixed fifth of the customers (by id) never trained on: early stopping and calibration."""
    return _buckets(X.index, 5) == 0


def fit_calibrated(
    spec: ModelSpec, X: pd.DataFrame, y: np.ndarray, config: TrainingConfig, backend: Backend
) -> tuple[lgb.Booster, Calibrator]:
    """Boost on the training customers, then calibrate on the validation fifth pooled over every cutoff."""
    valid = validation_rows(X)
    booster = backend.fit_booster(_lgb_params(spec, len(X), config), X, y, valid)
    kind = "platt" if spec.target == "bought" else "ratio"
    return booster, fit_calibrator(kind, booster.predict(X[valid]), y[valid])


def train_model(spec: ModelSpec, cache: SnapshotCache, config: TrainingConfig) -> TrainedModel:
    """Train, calibrate and judge one model; never raises for lack of data, falls back instead."""
    cutoffs = training_cutoffs(
        cache.history, spec.horizon_days, config.n_cutoffs, config.step_days, config.min_history_days
    )
    if len(cutoffs) < 2:
        return TrainedModel(
            spec, "baseline", f"history too short for a {spec.horizon_days}-day holdout and a training window"
        )
    holdout, train_cutoffs = cutoffs[0], cutoffs[1:]
    X, y = stack_cutoffs(spec, cache, train_cutoffs, config.max_train_rows)
    snap = cache.at(holdout)
    y_hold = label_frame(cache.history, holdout, spec.horizon_days, snap.features.index)[
        spec.target
    ].to_numpy()
    valid = validation_rows(X)
    if spec.target == "bought" and any(len(np.unique(v)) < 2 for v in (y[valid], y[~valid], y_hold)):
        return TrainedModel(spec, "baseline", "every buyer had the same outcome: nothing to learn from")
    booster, calibrator = fit_calibrated(spec, X, y, config, cache.backend)
    model_pred = calibrator.apply(booster.predict(snap.features[list(FEATURE_COLUMNS)]))
    base_pred = baseline_prediction(spec, snap.baseline)
    model_metrics = evaluate(spec, y_hold, model_pred)
    base_metrics = evaluate(spec, y_hold, base_pred)
    promoted, reason = beats_baseline(spec, model_metrics, base_metrics)
    return TrainedModel(
        spec=spec,
        kind="lightgbm" if promoted else "baseline",
        reason=reason,
        booster=booster,
        calibrator=calibrator,
        holdout={"lightgbm": model_metrics, "baseline": base_metrics},
        window=(str(train_cutoffs[-1].date()), str(cache.history.cutoff.date())),
        n_train=len(X),
        curves=holdout_curves(spec, y_hold, model_pred if promoted else base_pred),
    )


def predict_model(model: TrainedModel, features: pd.DataFrame, baseline: Baseline) -> np.ndarray:
    """The promoted model's calibrated prediction, or the baseline's."""
    if model.kind == "baseline" or model.booster is None or model.calibrator is None:
        return baseline_prediction(model.spec, baseline)
    return model.calibrator.apply(model.booster.predict(features[list(FEATURE_COLUMNS)]))
