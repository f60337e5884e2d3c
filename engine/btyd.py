"""BG/NBD (Fader, Hardie & Lee 2005) and Gamma-Gamma: the "buy till you die" baselines.

They need only frequency x (repeat purchase days), recency tx (days from first to last purchase day),
age T (days from first purchase to the cutoff) and mean order value. The likelihoods are written
with gammaln/betaln/hyp2f1 over whole arrays and fitted with L-BFGS-B on log-parameters, and the
BG/NBD data are collapsed to unique (x, tx, T) triples first, so a million customers fit in seconds.
Time is in days throughout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1
from threadpoolctl import threadpool_limits

from engine.frames import History


class BTYDFitError(RuntimeError):
    """The likelihood could not be maximised (degenerate data: e.g. nobody ever bought twice)."""


def btyd_summary(history: History) -> pd.DataFrame:
    """Per buyer before the cutoff: frequency, recency, T (days), n_orders and mean order value."""
    orders = history.orders
    day = orders["ordered_at"].dt.floor("D")
    per_day = pd.DataFrame({"customer_id": orders["customer_id"], "day": day})
    grouped = per_day.groupby("customer_id", sort=True)["day"]
    first, last, n_days = grouped.min(), grouped.max(), grouped.nunique()
    cutoff_day = history.cutoff.floor("D")
    amounts = orders.groupby("customer_id", sort=True)["amount"]
    return pd.DataFrame(
        {
            "frequency": (n_days - 1).astype("float64"),
            "recency": (last - first).dt.days.astype("float64"),
            "T": (cutoff_day - first).dt.days.astype("float64").clip(lower=0.0),
            "n_orders": amounts.size().astype("float64"),
            "monetary": amounts.mean(),
        }
    )


@dataclass(frozen=True)
class BGNBD:
    """Fitted BG/NBD parameters (r, alpha for the purchase rate; a, b for the dropout probability)."""

    r: float
    alpha: float
    a: float
    b: float

    def params(self) -> dict[str, float]:
        return asdict(self)

    def _log_terms(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """log of the 'still alive' and 'dropped after last purchase' likelihood parts (without A)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        alive = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore", invalid="ignore"):
            dropped = betaln(a + 1, b + x - 1) - betaln(a, b) - (r + x) * np.log(alpha + tx)
        dropped = np.where(x > 0, dropped, -np.inf)
        return alive, dropped

    def log_likelihood(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha = self.r, self.alpha
        alive, dropped = self._log_terms(x, tx, T)
        return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + np.logaddexp(alive, dropped)

    def p_alive(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(still active at the cutoff | history); 1 for one-time buyers (a known BG/NBD weakness)."""
        alive, dropped = self._log_terms(x, tx, T)
        return 1.0 / (1.0 + np.exp(dropped - alive))

    def p_no_purchase(self, t: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(no purchase in the next t days): dropped out, or alive and silent under the rate posterior."""
        pa = self.p_alive(x, tx, T)
        stay_quiet = ((self.alpha + T) / (self.alpha + T + t)) ** (self.r + x)
        return 1.0 - pa + pa * stay_quiet

    def expected_purchases(self, t: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[purchases in the next t days | history] (Fader et al. 2005, eq. 10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        if abs(a - 1.0) < 1e-6:
            a += 1e-6  # the closed form has a removable singularity at a = 1
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        body = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout = np.where(
                x > 0, a / np.maximum(b + x - 1, 1e-12) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0
            )
        return np.clip(head * body / (1 + dropout), 0.0, None)


@dataclass(frozen=True)
class GammaGamma:
    """Fitted Gamma-Gamma spend model: mean order value shrunk toward the population mean."""

    p: float
    q: float
    v: float

    def params(self) -> dict[str, float]:
        return asdict(self)

    def log_likelihood(self, n: np.ndarray, m: np.ndarray) -> np.ndarray:
        p, q, v = self.p, self.q, self.v
        return (
            gammaln(p * n + q)
            - gammaln(p * n)
            - gammaln(q)
            + q * np.log(v)
            + (p * n - 1) * np.log(m)
            + p * n * np.log(n)
            - (p * n + q) * np.log(v + n * m)
        )

    def expected_order_value(self, n: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[order value | n orders with mean m]; the population mean when n = 0 or m is unknown."""
        p, q, v = self.p, self.q, self.v
        known = (n > 0) & np.isfinite(m) & (m > 0)
        posterior = p * (v + n * np.where(known, m, 0.0)) / (p * n + q - 1)
        prior = p * v / (q - 1) if q > 1 else float(np.nanmean(np.where(known, m, np.nan)))
        return np.where(known, posterior, prior)


def _fit(neg_ll: object, start: np.ndarray, what: str) -> np.ndarray:
    # L-BFGS-B calls BLAS on 3-4 element vectors; threaded OpenBLAS makes that 3x slower in CPU time.
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(neg_ll, start, method="L-BFGS-B", bounds=[(-12.0, 12.0)] * len(start))
    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        raise BTYDFitError(f"{what} fit did not converge: {result.message}")
    return np.exp(result.x)


def fit_bgnbd(summary: pd.DataFrame) -> BGNBD:
    """Maximum-likelihood BG/NBD on unique (x, tx, T) rows weighted by their counts."""
    if len(summary) < 2 or float(summary["frequency"].sum()) == 0.0:
        raise BTYDFitError("BG/NBD needs at least two buyers and some repeat purchases")
    cells = summary.groupby(["frequency", "recency", "T"], sort=False).size().reset_index(name="w")
    x, tx, T, w = (cells[c].to_numpy(dtype="float64") for c in ("frequency", "recency", "T", "w"))
    total = w.sum()

    def neg_ll(theta: np.ndarray) -> float:
        model = BGNBD(*np.exp(theta))
        ll = model.log_likelihood(x, tx, T)
        value = -(w * ll).sum() / total
        return float(value) if np.isfinite(value) else 1e12

    start = np.log([0.5, max(float(np.mean(T)), 1.0), 1.0, 1.0])
    return BGNBD(*map(float, _fit(neg_ll, start, "BG/NBD")))


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma on buyers with a positive mean order value."""
    usable = summary[(summary["monetary"] > 0) & (summary["n_orders"] > 0)]
    if len(usable) < 2:
        raise BTYDFitError("Gamma-Gamma needs at least two buyers with a positive order value")
    n = usable["n_orders"].to_numpy(dtype="float64")
    m = usable["monetary"].to_numpy(dtype="float64")

    def neg_ll(theta: np.ndarray) -> float:
        value = -GammaGamma(*np.exp(theta)).log_likelihood(n, m).mean()
        return float(value) if np.isfinite(value) else 1e12

    start = np.log([1.0, 2.0, max(float(np.mean(m)), 1.0)])
    return GammaGamma(*map(float, _fit(neg_ll, start, "Gamma-Gamma")))
