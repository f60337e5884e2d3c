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
from engine.baseline import Baseline
from engine.chunks import ChunkSource, ShopInputs, chunk_features, concat_frames, gather
from engine.explain import baseline_reasons, top_reasons
from engine.frames import History, history_at, to_utc_timestamp
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
    scores = _finish(
        _predictions(models, now.features, now.baseline, history.cutoff, horizon_days, clv_horizons)
    )
    messages = _messages(models, now.baseline)
    return ScoringResult(scores=scores, models=models, snapshots=cache, messages=messages)


def _predictions(
    models: Mapping[str, TrainedModel],
    feats: pd.DataFrame,
    base: Baseline,
    cutoff: pd.Timestamp,
    horizon_days: int,
    clv_horizons: tuple[int, ...],
) -> pd.DataFrame:
    """Every score of the buyers in `feats` that depends on them alone (all but the CLV tier, a rank)."""
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
    scores["churn_risk"] = 1.0 - np.clip(pred["churn"], 0.0, 1.0)
    scores["churn_band"] = _band(scores["churn_risk"].to_numpy(), CHURN_BANDS)
    scores["next_order_date"] = _next_order_date(
        cutoff, scores["p_purchase"].to_numpy(), horizon_days
    ).to_numpy()
    kinds = {name: m.kind for name, m in models.items()}
    for name, kind in kinds.items():
        scores[f"model_kind_{name}"] = kind
    distinct = set(kinds.values())
    scores["model_kind"] = distinct.pop() if len(distinct) == 1 else "mixed"
    scores["reasons_purchase"] = _reasons(models["purchase"], feats)
    scores["reasons_churn"] = _reasons(models["churn"], feats)
    return scores


def _finish(scores: pd.DataFrame) -> pd.DataFrame:
    """All buyers' scores with the CLV tier, ranked on the first CLV horizon among them all."""
    first_clv = [c for c in scores.columns if c.startswith("clv_")]
    scores.insert(
        scores.columns.get_loc(first_clv[-1]) + 1, "clv_tier", _clv_tier(scores[first_clv[0]].to_numpy())
    )
    scores.index.name = "customer_id"
    return scores.reset_index()


def _messages(models: Mapping[str, TrainedModel], base: Baseline) -> list[str]:
    messages = [f"{name}: {m.kind} ({m.reason})" for name, m in models.items()]
    messages.append(f"baseline: {base.description}")
    return messages


# Training on a chunked shop reads at most this many buyers (the first chunks, a uniform hash sample).
# LightGBM sees at most `TrainingConfig.max_train_rows` (300k) customer x cutoff rows anyway, which ~13
# cutoffs of 50k buyers already fill; more buyers would cost feature time and memory for no more rows.
# 50k buyers also leave a holdout that pins AUC down to about +-0.005.
MAX_TRAIN_CUSTOMERS = 50_000


@dataclass
class ChunkedScoringResult:
    """Scores per customer and the models behind them, from a shop read chunk by chunk."""

    scores: pd.DataFrame
    models: dict[str, TrainedModel]
    messages: list[str]
    baseline: Baseline  # fitted on every buyer; `summary` holds one small row per buyer
    trained_on: int = 0  # buyers in the training sample (0: the given models scored)


ChunkSeen = Callable[[int, History], None]
ChunkScored = Callable[[int, History, pd.DataFrame], None]


@dataclass
class GatheredShop:
    """Pass one's result: the shop-wide inputs at the cutoff, and the training sample (or none)."""

    cutoff: pd.Timestamp
    inputs: ShopInputs
    sample: list[History]

    @property
    def buyers(self) -> int:
        return sum(self.inputs.buyers_per_chunk)


def score_chunks(
    source: ChunkSource,
    cutoff: object,
    horizon_days: int = 30,
    churn_horizon_days: int = 90,
    clv_horizons: tuple[int, ...] = (365,),
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
    models: Mapping[str, TrainedModel] | None = None,
    backend: Backend = LOCAL,
    max_train_customers: int = MAX_TRAIN_CUSTOMERS,
) -> ChunkedScoringResult:
    """`score_customers` on a shop read one customer chunk at a time, so memory does not grow with it.

    Pass one reads every chunk for the shop-wide inputs (`gather_chunks`) and keeps the first chunks,
    up to `max_train_customers` buyers, as the training sample; training runs on that sample as on a
    small shop (its shop-wide columns are the sample's: a uniform sample's repeat rates and refill
    cycles estimate the shop's). Pass two (`score_gathered`) reads every chunk again and scores it with
    the whole shop's inputs. When every chunk fits in the sample the result equals `score_customers` on
    the whole history.
    """
    if progress:
        progress(f"reading the shop's inputs from {source.n_chunks} chunks")
    gathered = gather_chunks(source, cutoff, models is None, max_train_customers)
    return score_gathered(
        source, gathered, horizon_days, churn_horizon_days, clv_horizons, config, progress, models, backend
    )


def gather_chunks(
    source: ChunkSource,
    cutoff: object,
    train: bool = True,
    max_train_customers: int = MAX_TRAIN_CUSTOMERS,
    observe: ChunkSeen | None = None,
) -> GatheredShop:
    """Pass one of `score_chunks`; `observe(index, history)` sees every chunk's history as it passes (so
    a caller gathers its own shop-wide counts in the same read). Keeps a training sample if `train`."""
    cutoff = to_utc_timestamp(cutoff)
    sample: list[History] = []

    def keep(index: int, history: History) -> None:
        held = sum(_buyers(h) for h in sample)
        if train and len(sample) == index and (not sample or held + _buyers(history) <= max_train_customers):
            sample.append(history)
        if observe is not None:
            observe(index, history)

    return GatheredShop(cutoff, gather(source, cutoff, keep), sample)


def score_gathered(
    source: ChunkSource,
    gathered: GatheredShop,
    horizon_days: int = 30,
    churn_horizon_days: int = 90,
    clv_horizons: tuple[int, ...] = (365,),
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
    models: Mapping[str, TrainedModel] | None = None,
    backend: Backend = LOCAL,
    scored: ChunkScored | None = None,
) -> ChunkedScoringResult:
    """Train on the gathered sample (unless `models` are given), then pass two of `score_chunks`.

    `scored(index, history, features)` sees every chunk's history and its buyers' features as they are
    scored, so a caller computes its own per-chunk outputs without reading the chunk again.
    """
    config = config or TrainingConfig()
    specs = model_specs(horizon_days, churn_horizon_days)
    cutoff, inputs = gathered.cutoff, gathered.inputs
    if not gathered.buyers:
        raise ValueError(f"no orders before {cutoff.date()}: nothing to score")
    trained_on = 0
    if models is None:
        training = History(concat_frames([h.frames for h in gathered.sample]), cutoff)
        gathered.sample.clear()
        trained_on = _buyers(training)
        chosen = train_all(training, specs, config, progress, backend)[1]
        del training  # the sample's rows go before pass two reads the chunks again
    else:
        chosen = _given(models, specs)
    if progress:
        progress("scoring customers")
    parts = []
    for index in range(source.n_chunks):
        history = history_at(source.chunk(index), cutoff)
        feats, base = chunk_features(history, inputs)
        if len(feats):
            parts.append(_predictions(chosen, feats, base, cutoff, horizon_days, clv_horizons))
        if scored is not None:
            scored(index, history, feats)
    scores = _finish(pd.concat(parts).sort_index(kind="stable"))
    messages = _messages(chosen, inputs.baseline)
    if trained_on:
        messages.append(f"models trained on {trained_on} of {gathered.buyers} buyers")
    return ChunkedScoringResult(scores, chosen, messages, inputs.baseline, trained_on)


def _buyers(history: History) -> int:
    return int(history.orders["customer_id"].nunique())
