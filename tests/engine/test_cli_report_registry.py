"""`espd predict` / `espd backtest` through typer's runner, the HTML report, and model bundles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from engine.frames import history_at, make_frames
from engine.models import TrainingConfig
from engine.registry import BundleError, dump_model, load_model, model_metadata
from engine.scoring import score_customers
from sync.commands.predict import register
from tests.support.btyd_sim import START, simulate_orders

runner = CliRunner()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture(scope="module")
def orders_csv(tmp_path_factory) -> Path:
    orders = simulate_orders(1200, seed=21, days=600)
    orders["category"] = np.where(orders.index % 3 == 0, "tea", "coffee")
    orders = orders.astype({"amount": "object"})
    orders["ordered_at"] = orders["ordered_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    orders.loc[5, "amount"] = "not a number"  # a malformed row is skipped, not fatal
    path = tmp_path_factory.mktemp("cli") / "orders.csv"
    orders.to_csv(path, index=False)
    return path


def test_predict_writes_one_row_per_customer(app, orders_csv, tmp_path) -> None:
    out = tmp_path / "pred.csv"
    args = ["predict", "--orders", str(orders_csv), "--as-of", "2024-06-01", "--horizon-days", "30"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    pred = pd.read_csv(out)
    required = [
        "customer_id",
        "p_purchase",
        "expected_orders",
        "expected_spend",
        "churn_risk",
        "next_order_date",
    ]
    assert set(required) <= set(pred.columns)
    assert pred["customer_id"].is_unique and len(pred) > 500
    assert "skipped rows" in result.output and "missing or negative amount: 1" in result.output


def test_backtest_prints_metrics_and_writes_report(app, orders_csv, tmp_path) -> None:
    report = tmp_path / "report.html"
    args = ["backtest", "--orders", str(orders_csv), "--cutoff", "2024-05-01", "--horizon-days", "30"]
    result = runner.invoke(app, [*args, "--report", str(report)])
    assert result.exit_code == 0, result.output
    for word in (
        "roc_auc",
        "pr_auc",
        "brier",
        "poisson_deviance",
        "spend_spearman",
        "espd",
        "bgnbd_gg",
        "rfm",
    ):
        assert word in result.output
    html = report.read_text()
    assert html.count("<svg") >= 2 and "Calibration" in html and "Gains" in html
    assert "<script" not in html and "http" not in html  # self-contained


def test_bad_input_exits_2_with_the_problem(app, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,order_id,amount\nc1,o1,3\n")
    result = runner.invoke(app, ["predict", "--orders", str(bad), "--as-of", "2024-01-01", "--out", "x.csv"])
    assert result.exit_code == 2
    assert "ordered_at" in result.output
    missing = runner.invoke(
        app, ["backtest", "--orders", str(tmp_path / "nope.csv"), "--cutoff", "2024-01-01"]
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_model_bundle_round_trip_predicts_the_same() -> None:
    frames, _ = make_frames(simulate_orders(1200, seed=21, days=600))
    result = score_customers(
        history_at(frames, START + pd.Timedelta(days=540)), config=TrainingConfig(n_cutoffs=4)
    )
    model = result.models["purchase"]
    restored = load_model(dump_model(model))
    X = result.now.features
    assert restored.kind == model.kind and restored.window == model.window
    np.testing.assert_allclose(restored.booster.predict(X), model.booster.predict(X))
    np.testing.assert_allclose(
        restored.calibrator.apply(np.array([0.2])), model.calibrator.apply(np.array([0.2]))
    )
    assert model_metadata(model)["holdout"] == model.holdout
    stale = dump_model(model).replace(b'"version": 1', b'"version": 0')
    with pytest.raises(BundleError, match="version"):
        load_model(stale)
