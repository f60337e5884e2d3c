"""The Dask backend: feature chunks as Dask dataframe partitions, boosting with `lightgbm.dask`.

Features: the history is cut into customer-hash chunks (`engine.chunks`), each becomes one partition of
a Dask dataframe computed on the workers; the shop-wide inputs are gathered once here and broadcast.
Boosting: the training rows are spread over the workers and `DaskLGBMClassifier`/`DaskLGBMRegressor` train
one data-parallel model. `lightgbm.dask` has no early stopping (its eval results are one worker's share
of the validation rows), so a fixed number of rounds is trained and the best round is then chosen here on
*all* validation rows with the same rule `lgb.early_stopping` applies, and the booster cut there. The
result matches the local backend to within LightGBM's distributed binning (measured in
tests/engine/test_dask_backend.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.dataframe as dd
import lightgbm as lgb
import numpy as np
import pandas as pd
from dask import delayed
from distributed import Client
from lightgbm.dask import DaskLGBMClassifier, DaskLGBMRegressor

from engine.backend import EARLY_STOPPING_ROUNDS, MAX_ROUNDS
from engine.baseline import Baseline
from engine.chunks import (
    ShopInputs,
    assemble,
    chunk_features,
    empty_features,
    n_chunks_for,
    shop_inputs,
    split_history,
)
from engine.frames import History

LABEL = "__label__"
TWEEDIE_POWER = 1.5  # LightGBM's default tweedie_variance_power, which the local backend trains with


def _partition(chunk: History, inputs: ShopInputs) -> pd.DataFrame:
    """One partition: the chunk's features, with the whole shop's baseline and shop-wide inputs."""
    return chunk_features(chunk, inputs)[0]


def _loss_per_round(objective: str, y: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """The objective's default LightGBM metric (what local early stopping watches) after each round.

    `raw` is rounds x rows of cumulative raw scores.
    """
    if objective == "binary":
        p = np.clip(1.0 / (1.0 + np.exp(-raw)), 1e-15, 1 - 1e-15)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p)).mean(axis=1)
    if objective == "poisson":
        return (np.exp(raw) - y * raw).mean(axis=1)
    if objective == "tweedie":
        rho = TWEEDIE_POWER
        return (-y * np.exp((1 - rho) * raw) / (1 - rho) + np.exp((2 - rho) * raw) / (2 - rho)).mean(axis=1)
    raise ValueError(f"the Dask backend has no stopping metric for objective {objective!r}")


def best_round(objective: str, booster: lgb.Booster, X: pd.DataFrame, y: np.ndarray) -> int:
    """The round (1-based) `lgb.early_stopping(EARLY_STOPPING_ROUNDS)` would have kept on (X, y)."""
    n_trees = booster.num_trees()
    per_tree = np.stack(
        [booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1) for i in range(n_trees)]
    )
    loss = _loss_per_round(objective, y, np.cumsum(per_tree, axis=0))
    best = 0
    for i in range(1, len(loss)):
        if loss[i] < loss[best]:
            best = i
        elif i - best >= EARLY_STOPPING_ROUNDS:
            break
    return best + 1


@dataclass(frozen=True)
class DaskBackend:
    """Features and boosting on the Dask cluster behind `client` (a LocalCluster or a remote scheduler)."""

    client: Client
    chunk_customers: int = 25_000
    max_rounds: int = MAX_ROUNDS

    def _workers(self) -> int:
        return max(1, len(self.client.scheduler_info()["workers"]))

    def _placed(self, frame: pd.DataFrame) -> dd.DataFrame:
        """`frame` in contiguous row blocks, block i scattered to the i-th worker by address.

        LightGBM's distributed bins come from each machine's own rows, so which rows a worker holds
        should not depend on the scheduler's timing. Which rank LightGBM then gives each worker still
        varies between fits, so repeated fits differ slightly (tests/engine/test_dask_backend.py).
        """
        workers = sorted(self.client.scheduler_info()["workers"])
        blocks = np.array_split(np.arange(len(frame)), len(workers))
        futures = [
            self.client.scatter(frame.iloc[rows], workers=[worker], direct=True, hash=False)
            for rows, worker in zip(blocks, workers, strict=True)
        ]
        return dd.from_delayed(futures, meta=frame.iloc[:0], verify_meta=False)

    def features(self, history: History, baseline: Baseline) -> pd.DataFrame:
        n_chunks = max(self._workers(), n_chunks_for(history, self.chunk_customers))
        # hash=False: a cutoff scored twice must not share keys with futures being released.
        chunks = self.client.scatter(list(split_history(history, n_chunks)), hash=False)
        shared = self.client.scatter(shop_inputs(history, baseline), broadcast=True, hash=False)
        frame = dd.from_delayed(
            [delayed(_partition)(chunk, shared) for chunk in chunks], meta=empty_features(), verify_meta=False
        )
        return assemble([self.client.compute(frame).result()])

    def fit_booster(
        self, params: dict[str, Any], X: pd.DataFrame, y: np.ndarray, valid: np.ndarray
    ) -> lgb.Booster:
        parts = self._placed(X[~valid].assign(**{LABEL: y[~valid]}).reset_index(drop=True))
        estimator = DaskLGBMClassifier if params["objective"] == "binary" else DaskLGBMRegressor
        # Threads are the workers' own (`dask worker --nthreads`): lightgbm.dask ignores num_threads.
        wanted = {k: v for k, v in params.items() if k != "num_threads"}
        model = estimator(client=self.client, n_estimators=self.max_rounds, **wanted)
        model.fit(parts[list(X.columns)], parts[LABEL])
        booster = model.to_local().booster_
        rounds = best_round(str(params["objective"]), booster, X[valid], y[valid])
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))
