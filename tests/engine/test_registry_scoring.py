"""Scoring with registry models: a dumped and reloaded bundle predicts exactly like the trained one.

This is what lets the daemon train once per retrain window and score every cycle in between.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.frames import ShopFrames, history_at
from engine.models import TrainingConfig, predict_model
from engine.registry import BundleError, dump_model, load_model, model_metadata
from engine.scoring import ScoringResult, score_customers
from simulators.shops import generate
from tests.support.shop_frames import shop_frames

FAST = TrainingConfig(n_cutoffs=4, min_buyers=100)
WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def frames() -> ShopFrames:
    return shop_frames(generate(800, seed=7))


@pytest.fixture(scope="module")
def cutoff(frames: ShopFrames) -> pd.Timestamp:
    """A week before the last order, so that a week later there is new data."""
    return frames.orders["ordered_at"].max().floor("D") - WEEK


@pytest.fixture(scope="module")
def trained(frames: ShopFrames, cutoff: pd.Timestamp) -> ScoringResult:
    return score_customers(history_at(frames, cutoff), config=FAST)


def test_loaded_models_score_exactly_like_the_trained_ones(frames, cutoff, trained: ScoringResult) -> None:
    kinds = {name: m.kind for name, m in trained.models.items()}
    assert kinds["churn"] == "lightgbm", kinds  # the booster, not only the baseline, is reloaded
    loaded = {name: load_model(dump_model(m)) for name, m in trained.models.items()}
    again = score_customers(history_at(frames, cutoff), config=FAST, models=loaded)
    pd.testing.assert_frame_equal(again.scores, trained.scores)
    assert again.messages == trained.messages


def test_given_models_score_later_data_without_retraining(frames, cutoff, trained: ScoringResult) -> None:
    """A week later the old models score the new features; a fresh training would answer differently."""
    later = history_at(frames, cutoff + WEEK)
    reused = score_customers(later, config=FAST, models=trained.models)
    assert all(reused.models[n] is m for n, m in trained.models.items())
    now = reused.now
    expected = predict_model(trained.models["churn"], now.features, now.baseline)
    np.testing.assert_allclose(reused.scores["churn_risk"], 1.0 - np.clip(expected, 0, 1))
    fresh = score_customers(later, config=FAST)
    assert not np.allclose(fresh.scores["churn_risk"], reused.scores["churn_risk"])


def test_models_for_other_horizons_are_refused(trained: ScoringResult, frames, cutoff) -> None:
    with pytest.raises(ValueError, match="churn"):
        score_customers(history_at(frames, cutoff), churn_horizon_days=60, config=FAST, models=trained.models)
    partial = {k: v for k, v in trained.models.items() if k != "spend"}
    with pytest.raises(ValueError, match="spend"):
        score_customers(history_at(frames, cutoff), config=FAST, models=partial)


def test_metadata_carries_the_holdout_curves_and_importance_the_dashboard_draws(
    trained: ScoringResult,
) -> None:
    for name, model in trained.models.items():
        meta = model_metadata(model)
        gains = meta["gains"]
        assert gains and len(gains["customers"]) == len(gains["captured"])
        assert gains["captured"][0] == 0.0 and gains["captured"][-1] == pytest.approx(1.0)
        assert np.all(np.diff(gains["captured"]) >= -1e-12), name
        is_probability = model.spec.target == "bought"
        assert (meta["calibration"] is not None) == is_probability, name
        if is_probability:
            assert all(
                0.0 <= v <= 1.0 for v in (*meta["calibration"]["mean_p"], *meta["calibration"]["rate"])
            )
        if model.kind == "lightgbm":
            shares = meta["importance"]
            assert shares and sum(shares.values()) == pytest.approx(1.0)
            assert set(shares) <= set(meta["features"])
        else:
            assert meta["importance"] is None
        restored = load_model(dump_model(model))
        assert restored.curves == model.curves


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: json.dumps(json.loads(b) | {"booster": "not a model"}).encode(),
        lambda b: b.replace(b'"spec": {', b'"spec": {"bogus": 1, ', 1),
    ],
    ids=["truncated", "broken-booster", "unknown-spec-field"],
)
def test_damaged_bundles_are_refused_with_a_bundle_error(trained: ScoringResult, damage) -> None:
    model = next(m for m in trained.models.values() if m.booster is not None)
    with pytest.raises(BundleError):
        load_model(damage(dump_model(model)))


def test_a_bundle_trained_on_another_feature_list_is_refused(trained: ScoringResult) -> None:
    """A booster from before a feature was added would read the columns shifted: refuse it, say why."""
    model = next(m for m in trained.models.values() if m.booster is not None)
    doc = json.loads(dump_model(model))
    older = json.dumps(doc | {"features": doc["features"][:-1]}).encode()
    with pytest.raises(BundleError, match="different feature list; retrain it"):
        load_model(older)
