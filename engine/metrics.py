"""Proper scoring rules for "buys again", counts and spend, plus the curves the report draws.

MAE alone rewards predicting 0 for everyone, so it is not here; every metric below can tell a useful
model from a constant one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

# Direction of "better" per metric, used by model promotion and by the report's table.
HIGHER_IS_BETTER = {
    "roc_auc": True,
    "pr_auc": True,
    "brier": False,
    "ece": False,
    "poisson_deviance": False,
    "total_count_error": False,
    "spend_rmse": False,
    "spend_spearman": True,
    "top_decile_capture": True,
}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean prediction| over equal-width bins, weighted by bin size."""
    bins = np.minimum((np.asarray(p) * n_bins).astype(int), n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "y": y, "p": p}).groupby("bin")
    stats = frame.agg(n=("y", "size"), rate=("y", "mean"), mean_p=("p", "mean"))
    return float((stats["n"] * (stats["rate"] - stats["mean_p"]).abs()).sum() / len(y))


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    both = len(np.unique(y)) == 2
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
    }


def poisson_deviance(y: np.ndarray, mu: np.ndarray) -> float:
    """Mean Poisson deviance of observed counts y under predicted means mu."""
    y, mu = np.asarray(y, dtype=float), np.clip(np.asarray(mu, dtype=float), 1e-9, None)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2 * (term - (y - mu))))


def count_metrics(y: np.ndarray, mu: np.ndarray) -> dict[str, float]:
    total = float(np.sum(y))
    return {
        "poisson_deviance": poisson_deviance(y, mu),
        "total_count_error": abs(float(np.sum(mu)) - total) / total if total > 0 else float("nan"),
    }


def top_decile_capture(actual: np.ndarray, score: np.ndarray) -> float:
    """Share of actual spend made by the 10 % of customers the score ranks highest."""
    actual = np.asarray(actual, dtype=float)
    if actual.sum() <= 0:
        return float("nan")
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[: max(1, len(actual) // 10)]
    return float(actual[top].sum() / actual.sum())


def spend_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    constant = np.all(actual == actual[0]) or np.all(predicted == predicted[0])
    return {
        "spend_rmse": float(np.sqrt(np.mean((actual - predicted) ** 2))),
        "spend_spearman": float("nan") if constant else float(spearmanr(actual, predicted).statistic),
        "top_decile_capture": top_decile_capture(actual, predicted),
    }


def calibration_curve(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Observed rate vs mean prediction per equal-frequency bin (what the report plots)."""
    order = np.argsort(p, kind="stable")
    bins = np.empty(len(p), dtype=int)
    bins[order] = np.arange(len(p)) * n_bins // max(len(p), 1)
    frame = pd.DataFrame({"bin": bins, "y": y, "p": p}).groupby("bin")
    return frame.agg(mean_p=("p", "mean"), rate=("y", "mean"), n=("y", "size")).reset_index(drop=True)


def gains_curve(actual: np.ndarray, score: np.ndarray, n_points: int = 20) -> pd.DataFrame:
    """Cumulative share of the actual outcome captured by the top x % of customers by score."""
    actual = np.asarray(actual, dtype=float)
    ranked = actual[np.argsort(-np.asarray(score, dtype=float), kind="stable")]
    cum = np.cumsum(ranked) / max(ranked.sum(), 1e-12)
    share = np.linspace(0, 1, n_points + 1)
    idx = np.clip((share * len(ranked)).astype(int) - 1, -1, len(ranked) - 1)
    captured = np.where(idx >= 0, cum[np.maximum(idx, 0)], 0.0)
    return pd.DataFrame({"customers": share, "captured": captured})


def best_cells(table: pd.DataFrame) -> pd.DataFrame:
    """True where a method (row) has the best value of a metric (column) among several methods."""
    best = pd.DataFrame(False, index=table.index, columns=table.columns)
    if len(table) < 2:
        return best
    for col in table.columns:
        column = table[col]
        target = column.max() if HIGHER_IS_BETTER.get(str(col), True) else column.min()
        best[col] = column.eq(target)
    return best
