"""Small pieces shared by the behavioural scores (send time, replenishment, discount, engagement,
affinity).

Inputs arrive already validated by `engine.frames` (typed columns, malformed rows dropped and counted),
so here there is only a column check for frames a caller assembled by hand, and the empirical-Bayes
helpers: most customers have a handful of observations, and each score pulls a thin personal estimate
toward the shop-wide value instead of trusting it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from engine.frames import FrameError

HOURS_PER_WEEK = 168


def require_columns(frame: pd.DataFrame, columns: Sequence[str], frame_name: str) -> None:
    """Fail early with the frame and column names, because a KeyError deep in a groupby says neither."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FrameError(
            f"{frame_name} frame: missing required column(s) {missing}; got {list(frame.columns)}"
        )


def hour_of_week(times: pd.Series) -> np.ndarray:
    """Hour of the week in UTC, Monday 00:00 = 0 .. Sunday 23:00 = 167."""
    return (times.dt.day_of_week * 24 + times.dt.hour).to_numpy(dtype=np.int64)


def beta_prior(successes: np.ndarray, trials: np.ndarray, max_strength: float = 50.0) -> tuple[float, float]:
    """Beta(a, b) prior fitted to the population by the method of moments.

    The prior strength a + b says how many observations a person needs before their own rate
    outweighs the shop's; it is estimated from how much the per-person rates really vary beyond
    binomial noise, and capped so a homogeneous population does not swamp everybody.
    """
    trials = np.asarray(trials, dtype=float)
    successes = np.asarray(successes, dtype=float)
    mask = trials > 0
    if not mask.any():
        return 1.0, 1.0
    mean = float(np.clip(successes[mask].sum() / trials[mask].sum(), 1e-4, 1 - 1e-4))
    rates = successes[mask] / trials[mask]
    # Var(rate_i) = tau2 + (m(1-m) - tau2) / n_i for a beta-binomial; solve for tau2 with h = mean(1/n).
    h = float(np.mean(1.0 / trials[mask]))
    between = (float(np.var(rates)) - mean * (1 - mean) * h) / max(1.0 - h, 1e-9)
    if between <= 1e-9:
        strength = max_strength
    else:
        strength = float(np.clip(mean * (1 - mean) / between - 1.0, 1.0, max_strength))
    return mean * strength, (1 - mean) * strength


def shrunk_rate(successes: np.ndarray, trials: np.ndarray, prior: tuple[float, float]) -> np.ndarray:
    """Posterior mean of a beta-binomial rate: the person's own rate pulled toward the prior mean."""
    a, b = prior
    return (np.asarray(successes, dtype=float) + a) / (np.asarray(trials, dtype=float) + a + b)


def band(score: pd.Series | np.ndarray, cuts: tuple[float, float] = (1 / 3, 2 / 3)) -> np.ndarray:
    """Low / medium / high on fixed cuts, so a band means the same thing in every shop."""
    values = np.asarray(score, dtype=float)
    return np.where(values < cuts[0], "low", np.where(values < cuts[1], "medium", "high"))
