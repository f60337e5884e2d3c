"""How close the engine's own training gets to the oracle when it is handed the truth: the learned floor.

    .venv/bin/python bench/learned_floor.py [--seed 7]

`bench/oracle_ceiling.py` bounds what the *information* in a history allows. This script bounds what
the *learning* allows: the purchase (30 days) and churn (90 days) models are trained exactly as
`engine.models.train_model` trains them (same rolling cutoffs, validation fifth, LightGBM parameters
and pooled Platt calibration), once on the engine's features, then again with the simulator's latent
truth appended as extra columns, constant per person across cutoffs:
    rates    true purchase rate λ and dropout rate μ;
    latents  λ, μ, engagement, discount sensitivity, own refill cycles and refill propensity.
What the "latents" model still loses to the oracle is lost by learning from a year of noisy rolling
labels, not by any missing feature; better features can at most close the gap down to it.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import pandas as pd
from benchlib import emit

from engine.frames import history_at
from engine.labels import training_cutoffs
from engine.metrics import binary_metrics
from engine.models import ModelSpec, SnapshotCache, TrainingConfig, fit_calibrated, stack_cutoffs
from simulators.shop_model import CONSUMABLES
from simulators.shop_truth import ShopTruth, labels, oracle_purchase_probability
from simulators.shops import generate_with_truth
from tests.support.shop_frames import shop_frames

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
MODELS = (("purchase", 30), ("active", 90))
RATES = ("purchase_rate", "dropout_rate")
LATENTS = (
    *RATES,
    "engagement",
    "discount_sensitivity",
    "replenish_continue",
    *(f"cycle_{item.category}" for item in CONSUMABLES),
)
VARIANTS = {"features": (), "rates": RATES, "latents": LATENTS}


def _with_truth(features: pd.DataFrame, truth: ShopTruth, columns: tuple[str, ...]) -> pd.DataFrame:
    """The features with the person's true latents appended (rows repeat a person once per cutoff)."""
    people = truth.people.set_index("person_id").reindex(features.index.astype(int))
    return features.assign(**{f"true_{c}": people[c].to_numpy() for c in columns})


def floor(truth: ShopTruth, cache: SnapshotCache, horizon: int, config: TrainingConfig) -> pd.DataFrame:
    """AUC, ECE and gap to the oracle of each variant, scored at the shop's as_of."""
    spec = ModelSpec("floor", "bought", "binary", horizon)
    cutoffs = training_cutoffs(
        cache.history, horizon, config.n_cutoffs, config.step_days, config.min_history_days
    )
    X, y = stack_cutoffs(spec, cache, cutoffs[1:], config.max_train_rows)
    now = cache.at(cache.history.cutoff).features
    oracle = oracle_purchase_probability(truth, truth.as_of, horizon).set_index("person_id")["p_purchase"]
    outcome = labels(truth, truth.as_of, horizon).set_index("person_id")["bought"].astype(float)
    idx = now.index.astype(int).intersection(oracle.index)
    y_now = outcome.loc[idx].to_numpy()
    rows = {"oracle": binary_metrics(y_now, oracle.loc[idx].to_numpy())}
    for name, columns in VARIANTS.items():
        booster, calibrator = fit_calibrated(spec, _with_truth(X, truth, columns), y, config, cache.backend)
        p = pd.Series(
            calibrator.apply(booster.predict(_with_truth(now, truth, columns))), now.index.astype(int)
        )
        rows[name] = binary_metrics(y_now, p.loc[idx].to_numpy())
    table = pd.DataFrame(rows).T[["roc_auc", "ece"]]
    table["gap"] = table.loc["oracle", "roc_auc"] - table["roc_auc"]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    shop, truth = generate_with_truth("small", seed=args.seed, as_of=AS_OF)
    started = time.perf_counter()
    cache = SnapshotCache(history_at(shop_frames(shop), truth.as_of))
    result: dict[str, object] = {}
    summary = [f"synthetic small seed={args.seed}: the engine's training on features, then + true latents"]
    for name, horizon in MODELS:
        table = floor(truth, cache, horizon, TrainingConfig())
        result[name] = {v: {k: round(float(x), 4) for k, x in row.items()} for v, row in table.iterrows()}
        summary += [f"{name} ({horizon} d):", table.round(4).to_string()]
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit("learned_floor", {**result, "command": f"bench/learned_floor.py --seed {args.seed}"}, summary)


if __name__ == "__main__":
    main()
