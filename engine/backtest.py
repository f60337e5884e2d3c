"""Backtest: score as of a past cutoff, then compare with what happened in the next horizon.

espd is scored by `score_customers` on `history_at(cutoff)` (so it cannot see the outcome window),
and compared on the same buyers with BG/NBD + Gamma-Gamma and RFM fitted on the same history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.frames import ShopFrames, history_at, to_utc_timestamp
from engine.labels import label_frame
from engine.metrics import binary_metrics, count_metrics, spend_metrics
from engine.models import TrainingConfig
from engine.rfm import fit_rfm
from engine.scoring import Progress, ScoringResult, score_customers

DAY = pd.Timedelta(days=1)
METHODS = ("espd", "bgnbd_gg", "rfm")


@dataclass
class BacktestResult:
    """Metrics per method (rows) and the predictions and outcomes behind them."""

    table: pd.DataFrame
    churn_table: pd.DataFrame
    predictions: dict[str, pd.DataFrame]
    actual: pd.DataFrame
    scoring: ScoringResult
    messages: list[str]


def _metrics(pred: pd.DataFrame, actual: pd.DataFrame) -> dict[str, float]:
    return (
        binary_metrics(actual["bought"], pred["p_purchase"])
        | count_metrics(actual["n_orders"], pred["expected_orders"])
        | spend_metrics(actual["spend"], pred["expected_spend"])
    )


def _rfm_predictions(scoring: ScoringResult, horizon_days: int) -> pd.DataFrame:
    """RFM cells learned on the window that ends at the cutoff, applied at the cutoff."""
    history = scoring.snapshots.history
    before = scoring.snapshots.at(history.cutoff - horizon_days * DAY)
    labels = label_frame(history, before.cutoff, horizon_days, before.features.index)
    return fit_rfm(before.features, labels).predict(scoring.now.features)


def _covered(frames: ShopFrames, end: pd.Timestamp) -> bool:
    return bool(len(frames.orders)) and frames.orders["ordered_at"].max() >= end - 7 * DAY


def backtest(
    frames: ShopFrames,
    cutoff: object,
    horizon_days: int,
    churn_horizon_days: int = 90,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Score at `cutoff` and measure every method against the following `horizon_days`."""
    cut = to_utc_timestamp(cutoff)
    scoring = score_customers(
        history_at(frames, cut), horizon_days, churn_horizon_days, config=config, progress=progress
    )
    index = scoring.now.features.index
    messages = list(scoring.messages)
    if not _covered(frames, cut + horizon_days * DAY):
        messages.append(
            f"warning: the data end before {(cut + horizon_days * DAY).date()}; outcomes are partial"
        )
    actual = label_frame(history_at(frames, cut + horizon_days * DAY), cut, horizon_days, index)
    espd = scoring.scores.set_index("customer_id")
    predictions = {
        "espd": espd[["p_purchase", "expected_orders", "expected_spend"]],
        "bgnbd_gg": scoring.now.baseline.predict(horizon_days),
    }
    if (cut - horizon_days * DAY) > frames.orders["ordered_at"].min():
        predictions["rfm"] = _rfm_predictions(scoring, horizon_days)
    table = pd.DataFrame({name: _metrics(pred, actual) for name, pred in predictions.items()}).T
    churn_table = pd.DataFrame()
    if _covered(frames, cut + churn_horizon_days * DAY):
        active = label_frame(
            history_at(frames, cut + churn_horizon_days * DAY), cut, churn_horizon_days, index
        )
        churn = {
            "espd": 1.0 - espd["churn_risk"].to_numpy(),
            "bgnbd_gg": scoring.now.baseline.p_purchase(churn_horizon_days),
        }
        churn_table = pd.DataFrame(
            {name: binary_metrics(active["bought"], np.asarray(p)) for name, p in churn.items()}
        ).T
    return BacktestResult(table, churn_table, predictions, actual, scoring, messages)
