"""Reasons from per-feature contributions: TreeSHAP shared per route gives LightGBM's `pred_contrib`."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from engine.explain import contributions, reasons_from, top_reasons
from engine.features import FEATURE_COLUMNS


def _rows(n: int, seed: int) -> np.ndarray:
    """Rows that reach every kind of split side: NaN, exact zeros, values LightGBM reads as zero, inf."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 6))
    values[:, 1] = rng.integers(0, 4, n)  # few distinct values: many rows share routes
    values[rng.random(n) < 0.2, 2] = np.nan
    values[rng.random(n) < 0.3, 3] = 0.0
    values[rng.random(n) < 0.05, 3] = 1e-40  # |v| <= 1e-35: LightGBM reads 0
    values[rng.random(n) < 0.02, 4] = np.inf
    return values


def _booster(params: dict[str, object], values: np.ndarray, seed: int = 0) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    filled = np.nan_to_num(values, nan=-1.0, posinf=3.0)
    logit = filled[:, 0] + 0.5 * filled[:, 1] - filled[:, 2] + (filled[:, 3] == 0) + 0.3 * filled[:, 5]
    y = (rng.random(len(values)) < 1 / (1 + np.exp(-logit))).astype(float)
    base = {"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1, "seed": seed}
    return lgb.train({**base, **params}, lgb.Dataset(values, y), num_boost_round=40)


@pytest.mark.parametrize(
    "params",
    [
        {},  # NaN seen in training: "NaN" missing type
        {"zero_as_missing": True},  # "Zero" missing type
        {"use_missing": False},  # "None": NaN read as 0
        {"num_leaves": 127, "min_data_in_leaf": 2},  # over 60 splits a tree: routes are renumbered
    ],
)
def test_contributions_are_lightgbms_pred_contrib(params: dict[str, object]) -> None:
    booster = _booster(params, _rows(4000, seed=1))
    rows = _rows(3000, seed=2)  # other rows than the training ones, inf included
    expected = booster.predict(rows, pred_contrib=True)[:, :-1]
    got = contributions(booster, rows)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_contributions_stop_at_the_best_iteration() -> None:
    booster = _booster({}, _rows(4000, seed=1))
    booster.best_iteration = 10
    rows = _rows(500, seed=3)
    expected = booster.predict(rows, pred_contrib=True)[:, :-1]  # pred_contrib also stops there
    np.testing.assert_allclose(contributions(booster, rows), expected, rtol=1e-12, atol=1e-12)
    assert not np.allclose(expected, booster.predict(rows, pred_contrib=True, num_iteration=40)[:, :-1])


def test_a_booster_read_from_text_uses_every_tree() -> None:
    """A booster read back from its text (the registry's bundles) has best_iteration -1: every tree."""
    trained = _booster({}, _rows(4000, seed=1))
    loaded = lgb.Booster(model_str=trained.model_to_string())
    assert loaded.best_iteration == -1
    rows = _rows(500, seed=3)
    expected = trained.predict(rows, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(contributions(loaded, rows), expected, rtol=1e-12, atol=1e-12)


def test_top_reasons_are_those_of_pred_contrib() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    columns = list(FEATURE_COLUMNS)
    features = pd.DataFrame(rng.gamma(2.0, 10.0, size=(n, len(columns))), columns=columns)
    features.iloc[rng.random(n) < 0.3, columns.index("ipt_mean")] = np.nan
    features["n_orders"] = rng.integers(1, 6, n).astype(float)
    features.index = pd.Index([f"c{i}" for i in range(n)], name="customer_id")
    y = (features["recency_days"] < features["ipt_mean"].fillna(40) + rng.normal(0, 10, n)).astype(float)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(features.to_numpy(), y), num_boost_round=30)
    values = features.to_numpy(dtype="float64")
    expected = reasons_from(booster.predict(values, pred_contrib=True)[:, :-1], values, features.index)
    got = top_reasons(booster, features)
    pd.testing.assert_series_equal(got, expected)
    assert got.str.count("; ").max() == 2  # three reasons where they differ


def test_categorical_splits_are_refused() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 5, size=(500, 2)).astype(float)
    y = (values[:, 0] == 2).astype(float)
    params = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_per_group": 5}
    booster = lgb.train(params, lgb.Dataset(values, y, categorical_feature=[0]), num_boost_round=3)
    with pytest.raises(ValueError, match="numerical splits"):
        contributions(booster, values)
