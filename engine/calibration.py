"""Calibration fitted on a held-out cutoff, because marketers read a "0.8" as 80 %.

Probabilities get Platt scaling on the logit of the raw score (two parameters, keeps the ranking, so
ROC AUC is untouched and few holdout rows suffice). Counts and spend get one ratio so that the total
predicted matches the total observed on the holdout (the "total-count error" a shop sees first).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy.optimize import minimize

EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibrator:
    """`platt`: sigmoid(slope * logit(raw) + intercept); `ratio`: slope * raw."""

    kind: Literal["platt", "ratio"]
    slope: float
    intercept: float = 0.0

    def apply(self, raw: np.ndarray) -> np.ndarray:
        if self.kind == "ratio":
            return self.slope * raw
        return 1.0 / (1.0 + np.exp(-(self.slope * _logit(raw) + self.intercept)))

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def fit_platt(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Maximum-likelihood Platt scaling; identity when the holdout has a single class."""
    if len(np.unique(y)) < 2:
        return Calibrator("platt", 1.0, 0.0)
    z = _logit(raw)

    def neg_ll(theta: np.ndarray) -> float:
        eta = theta[0] * z + theta[1]
        return float(np.mean(np.logaddexp(0.0, eta) - y * eta))

    result = minimize(neg_ll, np.array([1.0, 0.0]), method="L-BFGS-B")
    return Calibrator("platt", float(result.x[0]), float(result.x[1]))


def fit_ratio(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Scale so totals match; identity when the model predicts nothing at all."""
    total = float(np.sum(raw))
    return Calibrator("ratio", float(np.sum(y)) / total if total > 0 else 1.0)


def fit_calibrator(kind: Literal["platt", "ratio"], raw: np.ndarray, y: np.ndarray) -> Calibrator:
    return fit_platt(raw, y) if kind == "platt" else fit_ratio(raw, y)
