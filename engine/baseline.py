"""The baseline every model is compared with and falls back to: BG/NBD + Gamma-Gamma, else a rule.

`fit_baseline` never raises on odd data: when the BG/NBD likelihood cannot be fitted (e.g. nobody has
bought twice yet) it falls back to a pooled-rate rule and says so in `description`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.btyd import BGNBD, BTYDFitError, GammaGamma, btyd_summary, fit_bgnbd, fit_gamma_gamma
from engine.frames import History

# The BTYD parameters describe the population, so a large sample pins them down as well as every buyer
# does; fitting on at most this many keeps a 100k-customer shop's rolling cutoffs to seconds each.
FIT_SAMPLE = 20_000


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline over the buyers of one history, able to score any horizon."""

    summary: pd.DataFrame
    bgnbd: BGNBD | None
    gamma_gamma: GammaGamma | None
    description: str
    # Population figures the fallbacks use, fixed at fitting so a chunk of the buyers scores as the whole.
    pooled_rate: float
    mean_order_value: float

    def _xtT(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(self.summary[c].to_numpy(dtype="float64") for c in ("frequency", "recency", "T"))

    def _rule_rate(self) -> np.ndarray:
        """Orders per day, shrunk toward the pooled rate with 30 days of prior exposure."""
        n, T = self.summary["n_orders"].to_numpy(), self.summary["T"].to_numpy() + 1.0
        return (n - 1 + self.pooled_rate * 30.0) / (T + 30.0)

    def p_alive(self) -> np.ndarray:
        """BG/NBD's P(active); unknown (NaN) under the rule, which has no notion of dropout."""
        if self.bgnbd is None:
            return np.full(len(self.summary), np.nan)
        return self.bgnbd.p_alive(*self._xtT())

    def expected_orders(self, horizon_days: float) -> np.ndarray:
        if self.bgnbd is None:
            return self._rule_rate() * horizon_days
        return self.bgnbd.expected_purchases(horizon_days, *self._xtT())

    def p_purchase(self, horizon_days: float) -> np.ndarray:
        if self.bgnbd is None:
            return 1.0 - np.exp(-self._rule_rate() * horizon_days)
        return 1.0 - self.bgnbd.p_no_purchase(horizon_days, *self._xtT())

    def order_value(self) -> np.ndarray:
        n, m = self.summary["n_orders"].to_numpy(), self.summary["monetary"].to_numpy()
        if self.gamma_gamma is None:
            return np.full(len(n), self.mean_order_value)
        return self.gamma_gamma.expected_order_value(n, m)

    def for_customers(self, index: pd.Index) -> Baseline:
        """The same fitted baseline over only the buyers in `index` (one chunk of the shop)."""
        return replace(self, summary=self.summary.reindex(index))

    def predict(self, horizon_days: float) -> pd.DataFrame:
        """p_purchase, expected_orders and expected_spend over `horizon_days` per buyer."""
        orders = self.expected_orders(horizon_days)
        return pd.DataFrame(
            {
                "p_purchase": self.p_purchase(horizon_days),
                "expected_orders": orders,
                "expected_spend": orders * self.order_value(),
            },
            index=self.summary.index,
        )


def fit_baseline(history: History) -> Baseline:
    """BG/NBD + Gamma-Gamma on the history's buyers, or the pooled-rate rule when they cannot fit."""
    return baseline_from_summary(btyd_summary(history))


def baseline_from_summary(summary: pd.DataFrame) -> Baseline:
    """`fit_baseline` from the buyers' `btyd_summary` rows, which a shop read in customer chunks can
    gather chunk by chunk (they are per buyer): the same fit as on the whole history."""
    sample = _fit_sample(summary)
    notes = []
    try:
        bg: BGNBD | None = fit_bgnbd(sample)
        notes.append("BG/NBD")
    except BTYDFitError as exc:
        bg = None
        notes.append(f"pooled-rate rule ({exc})")
    try:
        gg: GammaGamma | None = fit_gamma_gamma(sample)
        notes.append("Gamma-Gamma")
    except BTYDFitError as exc:
        gg = None
        notes.append(f"mean order value ({exc})")
    n, m = summary["n_orders"].to_numpy(), summary["monetary"].to_numpy()
    return Baseline(
        summary=summary,
        bgnbd=bg,
        gamma_gamma=gg,
        description=" + ".join(notes),
        pooled_rate=float(n.sum() / (summary["T"].to_numpy() + 1.0).sum()) if len(n) else 0.0,
        mean_order_value=float(np.nanmean(m)) if len(m) else 0.0,
    )


def _fit_sample(summary: pd.DataFrame) -> pd.DataFrame:
    """At most about `FIT_SAMPLE` buyers, chosen by a hash of their id (stable across cutoffs)."""
    if len(summary) <= FIT_SAMPLE:
        return summary
    hashed = pd.util.hash_pandas_object(summary.index.to_series(), index=False).to_numpy() % 1_000_000
    return summary[hashed < FIT_SAMPLE / len(summary) * 1_000_000]
