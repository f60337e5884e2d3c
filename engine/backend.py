"""Where the two heavy steps of training run: feature matrices per cutoff, and boosting.

The engine stays one code path for a laptop and a cluster: `SnapshotCache` and `train_model` ask a
`Backend` for features and boosters, and the rest (labels, calibration, judging, scoring) is the same
whatever the backend. `LocalBackend` runs in this process; `engine.dask_backend.DaskBackend` runs on a Dask
cluster. A backend is handed in, never read from configuration (that is the daemon's job, `sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.baseline import Baseline
from engine.chunks import DEFAULT_CHUNK_CUSTOMERS, build_features_chunked
from engine.frames import History

MAX_ROUNDS = 400
EARLY_STOPPING_ROUNDS = 20


class Backend(Protocol):
    def features(self, history: History, baseline: Baseline) -> pd.DataFrame:
        """`engine.features.build_features(history, baseline)`, however it is computed."""
        ...

    def fit_booster(
        self, params: dict[str, Any], X: pd.DataFrame, y: np.ndarray, valid: np.ndarray
    ) -> lgb.Booster:
        """A booster trained on the rows not in `valid`, its number of rounds chosen on `valid`."""
        ...


@dataclass(frozen=True)
class LocalBackend:
    """In this process: features chunk by customer hash, boosting with early stopping."""

    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS

    def features(self, history: History, baseline: Baseline) -> pd.DataFrame:
        return build_features_chunked(history, baseline, self.chunk_customers)

    def fit_booster(
        self, params: dict[str, Any], X: pd.DataFrame, y: np.ndarray, valid: np.ndarray
    ) -> lgb.Booster:
        train = lgb.Dataset(X[~valid], y[~valid], free_raw_data=False)
        check = lgb.Dataset(X[valid], y[valid], reference=train)
        return lgb.train(
            params,
            train,
            num_boost_round=MAX_ROUNDS,
            valid_sets=[check],
            callbacks=[lgb.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)],
        )


LOCAL = LocalBackend()
