"""Score every buyer of a history: train, judge, calibrate, then predict with the promoted models.

`score_customers` always answers. With too few buyers or too little history it scores with the
baseline (BG/NBD + Gamma-Gamma, or a rule when even those cannot fit), and every score carries the
`model_kind` that produced it plus a message saying why. Given already-trained models (a registry's
promoted ones), it scores with them and trains nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.backend import LOCAL, Backend
from engine.explain import baseline_reasons, top_reasons
from engine.frames import History
from engine.models import (
    ModelSpec,
    Snapshot,
    SnapshotCache,
    TrainedModel,
    TrainingConfig,
    predict_model,
    train_model,
)

Progress = Callable[[str], None]

CHURN_BANDS = ((0.4, "low"), (0.7, "medium"), (1.01, "high"))
CLV_TIERS = ((0.10, "top"), (0.30, "high"), (0.60, "medium"), (1.01, "low"))
MAX_WAIT_DAYS = 3 * 365


@dataclass
class ScoringResult:
    """Scores per customer (one row each), the models behind them, and what the user should know."""

    scores: pd.DataFrame
    models: dict[str, TrainedModel]
    snapshots: SnapshotCache
    messages: list[str] = field(default_factory=list)

    @property
    def now(self) -> Snapshot:
        """Features and baseline at the scoring cutoff."""
        return self.snapshots.at(self.snapshots.history.cutoff)


def model_specs(horizon_days: int, churn_horizon_days: int) -> tuple[ModelSpec, ...]:
    return (
        ModelSpec("purchase", "bought", "binary", horizon_days),
        ModelSpec("orders", "n_orders", "poisson", horizon_days),
        ModelSpec("spend", "spend", "tweedie", horizon_days),
        ModelSpec("churn", "bought", "binary", churn_horizon_days),
    )


def _band(values: np.ndarray, bands: tuple[tuple[float, str], ...]) -> np.ndarray:
    edges = np.array([edge for edge, _ in bands])
    names = np.array([name for _, name in bands])
    return names[np.searchsorted(edges, values, side="right").clip(max=len(bands) - 1)]


def _clv_tier(clv: np.ndarray) -> np.ndarray:
    """Tier by rank: top 10 %, next 20 %, next 30 %, rest."""
    rank = pd.Series(clv).rank(ascending=False, method="first").to_numpy() / max(len(clv), 1)
    return _band(rank - 1e-12, CLV_TIERS)


def _next_order_date(cutoff: pd.Timestamp, p: np.ndarray, horizon_days: int) -> pd.Series:
    """Median wait under a constant hazard that matches P(order within the horizon)."""
    rate = -np.log1p(-np.clip(p, 1e-9, 1 - 1e-9)) / horizon_days
    wait = np.minimum(np.log(2) / rate, MAX_WAIT_DAYS)
    return pd.Series(cutoff.floor("D") + pd.to_timedelta(np.round(wait), unit="D")).dt.date


def _cold_start(
    n_buyers: int, config: TrainingConfig, specs: tuple[ModelSpec, ...]
) -> dict[str, TrainedModel]:
    reason = (
        f"only {n_buyers} buyers (LightGBM is trained from {config.min_buyers}): "
        "scores come from the baseline"
    )
    return {s.name: TrainedModel(s, "baseline", reason) for s in specs}


def train_all(
    history: History,
    specs: tuple[ModelSpec, ...],
    config: TrainingConfig,
    progress: Progress | None,
    backend: Backend = LOCAL,
) -> tuple[SnapshotCache, dict[str, TrainedModel]]:
    cache = SnapshotCache(history, backend)
    n_buyers = int(history.orders["customer_id"].nunique())
    if n_buyers < config.min_buyers:
        return cache, _cold_start(n_buyers, config, specs)
    models = {}
    for spec in specs:
        if progress:
            progress(f"training {spec.name} model ({spec.horizon_days} days)")
        models[spec.name] = train_model(spec, cache, config)
    return cache, models


def _given(models: Mapping[str, TrainedModel], specs: tuple[ModelSpec, ...]) -> dict[str, TrainedModel]:
    """The given models, checked to answer exactly the questions (names and horizons) asked now."""
    wrong = [s.name for s in specs if s.name not in models or models[s.name].spec != s]
    if wrong:
        raise ValueError(f"given models do not match the requested horizons for: {', '.join(wrong)}")
    return {s.name: models[s.name] for s in specs}


def _reasons(model: TrainedModel, features: pd.DataFrame) -> pd.Series:
    if model.kind == "lightgbm" and model.booster is not None:
        return top_reasons(model.booster, features)
    return baseline_reasons(features)


def score_customers(
    history: History,
    horizon_days: int = 30,
    churn_horizon_days: int = 90,
    clv_horizons: tuple[int, ...] = (365,),
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
    models: Mapping[str, TrainedModel] | None = None,
    backend: Backend = LOCAL,
) -> ScoringResult:
    """Scores for every buyer known at `history.cutoff` (see the module docstring for the fallback).

    With `models` (one per model spec, same horizons) nothing is trained: they predict as they are.
    `backend` is where features and boosting run (`engine.backend`): same features everywhere, and
    models that agree within the tolerances tests/engine/test_dask_backend.py measures.
    """
    config = config or TrainingConfig()
    specs = model_specs(horizon_days, churn_horizon_days)
    if history.orders.empty:
        raise ValueError(f"no orders before {history.cutoff.date()}: nothing to score")
    if models is None:
        cache, models = train_all(history, specs, config, progress, backend)
    else:
        cache, models = SnapshotCache(history, backend), _given(models, specs)
    if progress:
        progress("scoring customers")
    now = cache.at(history.cutoff)
    feats, base = now.features, now.baseline
    pred = {name: predict_model(m, feats, base) for name, m in models.items()}
    expected_orders = np.clip(pred["orders"], 0.0, None)
    spend = np.clip(pred["spend"], 0.0, None)
    base_orders = base.expected_orders(horizon_days)
    scores = pd.DataFrame(index=feats.index)
    scores["p_purchase"] = np.clip(pred["purchase"], 0.0, 1.0)
    scores["expected_orders"] = expected_orders
    scores["expected_spend"] = spend
    for h in clv_horizons:
        shape = np.where(
            base_orders > 1e-9, base.expected_orders(h) / np.maximum(base_orders, 1e-9), h / horizon_days
        )
        scores[f"clv_{h}"] = spend * shape
    first_clv = scores[f"clv_{clv_horizons[0]}"].to_numpy()
    scores["clv_tier"] = _clv_tier(first_clv)
    scores["churn_risk"] = 1.0 - np.clip(pred["churn"], 0.0, 1.0)
    scores["churn_band"] = _band(scores["churn_risk"].to_numpy(), CHURN_BANDS)
    scores["next_order_date"] = _next_order_date(
        history.cutoff, scores["p_purchase"].to_numpy(), horizon_days
    ).to_numpy()
    kinds = {name: m.kind for name, m in models.items()}
    for name, kind in kinds.items():
        scores[f"model_kind_{name}"] = kind
    distinct = set(kinds.values())
    scores["model_kind"] = distinct.pop() if len(distinct) == 1 else "mixed"
    scores["reasons_purchase"] = _reasons(models["purchase"], feats)
    scores["reasons_churn"] = _reasons(models["churn"], feats)
    messages = [f"{name}: {m.kind} ({m.reason})" for name, m in models.items()]
    messages.append(f"baseline: {base.description}")
    scores.index.name = "customer_id"
    return ScoringResult(scores=scores.reset_index(), models=models, snapshots=cache, messages=messages)
