"""How close the engine's own training gets to the oracle when it is handed the truth: the learned floor.

    .venv/bin/python bench/learned_floor.py [--seed 7]

`bench/oracle_ceiling.py` bounds what the *information* in a history allows. This script bounds what
the *learning* allows: the purchase (30 days) and churn (90 days) models are trained exactly as
`engine.models.train_model` trains them (same rolling cutoffs, validation fifth, LightGBM parameters
and pooled Platt calibration), once on the engine's features, then again with the simulator's latent
truth appended as extra columns, constant per person across cutoffs:
    rates    true purchase rate λ and dropout rate μ;
    latents  λ, μ, engagement, discount sensitivity, own refill cycles and refill propensity;
    oracle_feature  the oracle's own probability at each cutoff (for the same horizon).
The "oracle_feature" model lands within a few thousandths of the oracle: rolling labels, the validation
fifth, early stopping and pooled Platt scaling lose little once the right summary is a feature. What
the "rates" and "latents" models lose is the work of combining the latents with the history (who is
still alive given their silence, which refill is due, which sends are coming) into that summary,
learned by trees from a few thousand people.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
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


def _oracle_column(
    truth: ShopTruth, cache: SnapshotCache, cutoffs: list[pd.Timestamp], horizon: int
) -> np.ndarray:
    """The oracle's probability for the rows `stack_cutoffs` stacks (one block per cutoff, in order)."""
    blocks = []
    for cutoff in cutoffs:
        oracle = oracle_purchase_probability(truth, cutoff.to_pydatetime(), horizon).set_index("person_id")
        blocks.append(oracle["p_purchase"].reindex(cache.at(cutoff).features.index.astype(int)).to_numpy())
    return np.concatenate(blocks)


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
    given = {
        **{name: (_with_truth(X, truth, c), _with_truth(now, truth, c)) for name, c in VARIANTS.items()},
        "oracle_feature": (
            X.assign(true_oracle=_oracle_column(truth, cache, cutoffs[1:], horizon)),
            now.assign(true_oracle=oracle.reindex(now.index.astype(int)).to_numpy()),
        ),
    }
    for name, (train, score) in given.items():
        booster, calibrator = fit_calibrated(spec, train, y, config, cache.backend)
        p = pd.Series(calibrator.apply(booster.predict(score)), now.index.astype(int))
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
