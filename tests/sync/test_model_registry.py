"""The score stage's model registry on a real store: train once, score with the promoted models until
the retrain window closes, retrain when a bundle is unusable, and give the dashboard its model cards."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlmodel import Session

from engine.features import FEATURE_COLUMNS
from engine.registry import load_model
from sync import tables
from sync.config import EngineConfig, ScheduleConfig, SegmentsConfig
from sync.dashboard.models_view import model_cards
from sync.scoring import ScoreReport, score_store
from sync.store import session_scope
from tests.sync.shop_store import fill_store

NOW = datetime(2026, 11, 23, 6, tzinfo=UTC)
SETTINGS = EngineConfig(min_buyers=50)
SCHEDULE = ScheduleConfig(retrain_every_days=7)
NAMES = ["purchase", "orders", "spend", "churn"]
SOURCES = {"shop": "shopify"}
PEOPLE = 150


def _score(engine: Engine, now: datetime, settings: EngineConfig = SETTINGS) -> ScoreReport:
    """A score stage that cannot take the shortcut of stored scores, so it must score with models."""
    with session_scope(engine) as session:
        session.execute(delete(tables.Score))
    return score_store(engine, SOURCES, settings, now, SegmentsConfig(), SCHEDULE)


def _models(engine: Engine) -> list[tables.Model]:
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Model).where(tables.Model.output.in_(NAMES)).order_by(tables.Model.id)
        ).scalars()
        return list(rows)


@pytest.fixture
def trained(store_engine: Engine) -> ScoreReport:
    fill_store(store_engine, people=PEOPLE)
    return _score(store_engine, NOW)


def test_first_scoring_stores_one_promoted_model_per_output_with_its_holdout(
    store_engine: Engine, trained: ScoreReport
) -> None:
    assert trained.trained == NAMES and trained.scored > 0
    rows = _models(store_engine)
    assert sorted(r.output for r in rows) == sorted(NAMES) and all(r.promoted for r in rows)
    for row in rows:
        metrics = row.metrics or {}
        assert set(metrics["holdout"]) == {"lightgbm", "baseline"}, row.output
        assert metrics["gains"]["captured"][-1] == pytest.approx(1.0)
        assert bool(metrics.get("calibration")) == (row.output in ("purchase", "churn"))
        assert row.features == list(FEATURE_COLUMNS) and row.version == trained.version
        assert row.train_from is not None and row.train_from < row.train_to <= NOW
        model = load_model(row.artifact or b"")
        assert model.kind == row.kind and model.holdout.keys() == metrics["holdout"].keys()
    assert any(m.startswith("models retrained: no promoted model yet") for m in trained.messages)
    cards = model_cards(store_engine, SCHEDULE.retrain_every_days)
    shown = {c.output: c for c in cards}
    assert set(NAMES) <= set(shown)
    for name in NAMES:
        card = shown[name]
        assert card.promoted and card.retrain_due == NOW + timedelta(days=7)
        assert not {"training window", "holdout metrics", "gains curve"} & set(card.missing), card.missing


def test_the_promoted_models_score_until_the_window_closes_then_retrain(
    store_engine: Engine, trained: ScoreReport
) -> None:
    again = _score(store_engine, NOW + timedelta(hours=2))
    assert again.trained == [] and not again.reused
    assert again.scores == trained.scores, "same input and models must give the same values"
    assert "scored with models trained on 2026-11-23; next retrain 2026-11-30" in again.messages
    last_day = _score(store_engine, NOW + timedelta(days=6, hours=23))
    assert last_day.trained == [] and len(_models(store_engine)) == len(NAMES)

    later = _score(store_engine, NOW + timedelta(days=7))
    assert later.trained == NAMES
    assert any("were due for retraining on 2026-11-30" in m for m in later.messages), later.messages
    rows = _models(store_engine)
    assert len(rows) == 2 * len(NAMES)
    promoted = [r for r in rows if r.promoted]
    assert sorted(r.output for r in promoted) == sorted(NAMES)
    assert all(r.created_at == NOW + timedelta(days=7) for r in promoted)


def test_an_unloadable_bundle_or_other_settings_retrain(
    store_engine: Engine, trained: ScoreReport, caplog: pytest.LogCaptureFixture
) -> None:
    with session_scope(store_engine) as session:
        session.execute(
            update(tables.Model).where(tables.Model.output == "churn").values(artifact=b"{not json")
        )
    with caplog.at_level(logging.WARNING, logger="espd.models"):
        again = _score(store_engine, NOW + timedelta(hours=1))
    assert again.trained == NAMES
    assert any("churn model failed to load" in m for m in again.messages), again.messages
    assert any("model_bundle_unusable output=churn" in r.getMessage() for r in caplog.records)
    assert again.scores == trained.scores, "retraining on the same data gives the same values"

    changed = EngineConfig(min_buyers=50, sensitive_attributes=["country"])
    moved = _score(store_engine, NOW + timedelta(hours=2), changed)
    assert moved.trained == NAMES
    assert any("engine settings changed" in m for m in moved.messages), moved.messages
    promoted = [r for r in _models(store_engine) if r.promoted]
    assert len(promoted) == len(NAMES) and len(_models(store_engine)) == 3 * len(NAMES)


def test_models_trained_on_an_older_feature_list_are_retrained(
    store_engine: Engine, trained: ScoreReport
) -> None:
    """A release that adds features makes the stored boosters unusable: they retrain, saying why."""
    older = [c for c in FEATURE_COLUMNS if not c.endswith("_since_order")]
    with session_scope(store_engine) as session:
        session.execute(update(tables.Model).values(features=older))
    again = _score(store_engine, NOW + timedelta(hours=1))
    assert again.trained == NAMES
    assert any("trained on a different feature list" in m for m in again.messages), again.messages
    assert again.scores == trained.scores, "retraining on the same data gives the same values"


def test_a_baseline_only_shop_is_retrained_every_scoring(store_engine: Engine) -> None:
    fill_store(store_engine, people=60)
    settings = EngineConfig(min_buyers=100_000)
    first = _score(store_engine, NOW, settings)
    again = _score(store_engine, NOW + timedelta(hours=1), settings)
    assert first.trained == NAMES and again.trained == NAMES
    assert any("baseline fallback" in m for m in again.messages), again.messages
    assert model_cards(store_engine, SCHEDULE.retrain_every_days) == [], "no holdout, so no card"
