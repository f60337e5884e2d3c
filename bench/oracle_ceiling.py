"""How far the oracle stands above the best any model of the observable history could reach.

    .venv/bin/python bench/oracle_ceiling.py [--seed 7] [--samples 150] [--prior conditional|marginal]
        [--plan known|expected]

The acceptance oracle (`simulators.shop_truth.oracle_purchase_probability`) knows each buyer's true
purchase rate λ and dropout rate μ. A model of the history can at best hold the *posterior* over them.
This script computes that posterior predictive, P(order in the horizon | history), by self-normalised
importance sampling: draw (λ, μ) from the simulator's own Gaussian-copula prior, weight each draw by
the likelihood of the buyer's order history, and average the oracle's probability under each draw.

It is an upper bound on a fair model, not the fair model itself: every other latent (engagement,
discount sensitivity, spend level, refill cycles, the coming campaign sends) stays at its true value,
and with `--prior conditional` the λ, μ prior is conditioned on the true engagement, spend and
discount latents through the copula. `--prior marginal` forgets that link (the population prior only).
The gap "oracle - ceiling" is therefore a lower bound on what no observable feature can recover.
`--plan expected` takes one more latent from the ceiling: whether each coming send carries a discount
offer (the shop's frames end at the cutoff, so a model cannot know it); every future receipt then
converts with its expected odds over the shop's offer share.

The likelihood of the history up to the cutoff s, for a buyer who arrived at c and last ordered at t_n
with n_b orders of the base (Pareto/NBD) process, is, up to factors free of (λ, μ):
    λ^n_b · exp(-λ · S(c, t_n)) · exp(-μ (t_n - c)) · P(no order in (t_n, s] | alive at t_n; λ, μ)
where S is the seasonal mass; the last factor integrates over the unknown dropout time exactly as the
oracle does. Slow (the oracle runs once per draw): about 0.25 s per draw and horizon on an idle box.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from benchlib import emit
from scipy import stats
from scipy.special import logsumexp

from engine.metrics import binary_metrics
from simulators import shop_truth
from simulators.shop_email import DISCOUNT_SHARE
from simulators.shop_model import (
    DISCOUNT_SENSITIVITY,
    DROPOUT_RATE,
    ENGAGEMENT,
    LATENT_CORRELATION,
    MEAN_ORDER_VALUE,
    PURCHASE_RATE,
    conversion_probability,
    cumulative_season,
)
from simulators.shop_truth import ShopTruth, labels, oracle_purchase_probability
from simulators.shops import generate_with_truth

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
HORIZONS = {"purchase": 30, "active": 90}
RATES, OTHERS = [0, 4], [1, 2, 3]  # copula order: log λ, engagement, spend, discount, log μ


def _silence_and_purchase(
    truth: ShopTruth, batch: pd.DataFrame, horizon: float
) -> tuple[np.ndarray, np.ndarray]:
    """P(no order in (last, cutoff] | alive at last) and P(order in the horizon | history), per row.

    The oracle's own integration over the dropout time (`shop_truth._oracle_batch`), keeping the
    silence up to the cutoff, which the oracle divides away but the likelihood needs.
    """
    last = batch["last_day"].to_numpy()
    back = int(np.ceil(-last.min() / shop_truth.GRID_STEP_DAYS))
    steps_ahead = int(np.ceil(horizon / shop_truth.GRID_STEP_DAYS)) + 1
    grid = shop_truth.GRID_STEP_DAYS * np.arange(-back, steps_ahead)
    u = np.maximum(grid[None, :], last[:, None])
    mu = batch["dropout_rate"].to_numpy()[:, None]
    alive = np.exp(-mu * (u - last[:, None]) + shop_truth._log_silence(truth, batch, grid, last))
    density = mu * alive
    died = np.cumsum(0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(u, axis=1), axis=1)
    silent = alive + np.concatenate([np.zeros((len(batch), 1)), died], axis=1)
    return silent[:, back], 1.0 - silent[:, -1] / silent[:, back]


def _rate_prior(state: pd.DataFrame, conditional: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean (per buyer) and Cholesky factor of the normals behind (λ, μ), optionally given the others."""
    cov = LATENT_CORRELATION[np.ix_(RATES, RATES)]
    if not conditional:
        return np.zeros((len(state), 2)), np.linalg.cholesky(cov)
    known = np.column_stack(
        [
            stats.norm.ppf(stats.beta.cdf(state["engagement"], *ENGAGEMENT)),
            (np.log(state["mean_order_value"]) - MEAN_ORDER_VALUE[0]) / MEAN_ORDER_VALUE[1],
            stats.norm.ppf(stats.beta.cdf(state["discount_sensitivity"], *DISCOUNT_SENSITIVITY)),
        ]
    )
    cross = LATENT_CORRELATION[np.ix_(RATES, OTHERS)]
    gain = cross @ np.linalg.inv(LATENT_CORRELATION[np.ix_(OTHERS, OTHERS)])
    return known @ gain.T, np.linalg.cholesky(cov - gain @ cross.T)


def _gamma_rate(uniform: np.ndarray, shape_per_year: tuple[float, float]) -> np.ndarray:
    shape, per_year = shape_per_year
    return stats.gamma.ppf(uniform, shape, scale=per_year / shape / 365.0)


def ceiling(truth: ShopTruth, samples: int, conditional: bool, seed: int) -> dict[str, pd.Series]:
    """Posterior predictive P(order in each horizon | history) per buyer, by importance sampling."""
    state = shop_truth._history_state(truth, 0.0).sort_values("last_day", kind="stable")
    past = truth.orders.loc[truth.orders["day"] <= 0.0]
    n_base = past.loc[past["source"] == "base"].groupby("person_id").size()
    n_base = n_base.reindex(state["person_id"]).fillna(0.0).to_numpy()
    first, last = state["created_day"].to_numpy(), state["last_day"].to_numpy()
    mass = cumulative_season(last, truth.as_of) - cumulative_season(first, truth.as_of)
    mean, chol = _rate_prior(state, conditional)
    rng = np.random.default_rng(seed)
    log_w = {name: np.empty((samples, len(state))) for name in HORIZONS}
    p = {name: np.empty((samples, len(state))) for name in HORIZONS}
    for k in range(samples):
        u = stats.norm.cdf(mean + rng.standard_normal((len(state), 2)) @ chol.T)
        lam, mu = _gamma_rate(u[:, 0], PURCHASE_RATE), _gamma_rate(u[:, 1], DROPOUT_RATE)
        draw = state.assign(purchase_rate=lam, dropout_rate=mu)
        head = n_base * np.log(lam) - lam * mass - mu * (last - first)
        for name, horizon in HORIZONS.items():
            parts = [
                _silence_and_purchase(truth, draw.iloc[i : i + shop_truth.ORACLE_BATCH], horizon)
                for i in range(0, len(draw), shop_truth.ORACLE_BATCH)
            ]
            silent = np.concatenate([s for s, _ in parts])
            log_w[name][k] = head + np.log(np.maximum(silent, 1e-300))
            p[name][k] = np.concatenate([q for _, q in parts])
    out = {}
    for name in HORIZONS:
        weights = np.exp(log_w[name] - logsumexp(log_w[name], axis=0))
        out[name] = pd.Series((weights * p[name]).sum(axis=0), index=state["person_id"].to_numpy())
        out[f"{name}_ess"] = pd.Series(1.0 / (weights**2).sum(axis=0), index=state["person_id"].to_numpy())
    return out


def plan_blind(truth: ShopTruth) -> ShopTruth:
    """The truth with every future receipt's odds averaged over whether its send carries an offer."""
    exposures = truth.exposures
    offer = exposures["campaign_id"].map(truth.campaigns.set_index("campaign_id")["discount_offer"])
    sensitivity = exposures["person_id"].map(truth.people.set_index("person_id")["discount_sensitivity"])
    ds, offer = sensitivity.to_numpy(), offer.to_numpy(dtype=bool)
    p_open = exposures["p_order"].to_numpy() / conversion_probability(ds, offer)
    average = DISCOUNT_SHARE * ds + (1 - DISCOUNT_SHARE) * conversion_probability(ds, np.zeros_like(offer))
    future = exposures["sent_day"].to_numpy() > 0
    blind = np.where(future, p_open * average, exposures["p_order"].to_numpy())
    return dataclasses.replace(truth, exposures=exposures.assign(p_order=blind))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--samples", type=int, default=150)
    parser.add_argument("--prior", choices=("conditional", "marginal"), default="conditional")
    parser.add_argument("--plan", choices=("known", "expected"), default="known")
    args = parser.parse_args()
    _, truth = generate_with_truth("small", seed=args.seed, as_of=AS_OF)
    started = time.perf_counter()
    seen = truth if args.plan == "known" else plan_blind(truth)
    fair = ceiling(seen, args.samples, args.prior == "conditional", seed=1)
    result: dict[str, object] = {"seconds": round(time.perf_counter() - started, 1)}
    what = f"{args.samples} draws, {args.prior} prior, {args.plan} plan"
    summary = [f"synthetic small seed={args.seed}, {what}:"]
    for name, horizon in HORIZONS.items():
        oracle = oracle_purchase_probability(truth, truth.as_of, horizon).set_index("person_id")["p_purchase"]
        y = labels(truth, truth.as_of, horizon).set_index("person_id")["bought"].astype(float)
        idx = oracle.index.intersection(fair[name].index)
        m_oracle = binary_metrics(y.loc[idx].to_numpy(), oracle.loc[idx].to_numpy())
        m_fair = binary_metrics(y.loc[idx].to_numpy(), fair[name].loc[idx].to_numpy())
        gap = m_oracle["roc_auc"] - m_fair["roc_auc"]
        result[name] = {
            "oracle_auc": round(m_oracle["roc_auc"], 4),
            "ceiling_auc": round(m_fair["roc_auc"], 4),
            "gap": round(gap, 4),
            "ceiling_ece": round(m_fair["ece"], 4),
            "median_ess": round(float(fair[f"{name}_ess"].median()), 1),
        }
        summary.append(
            f"  {name} ({horizon} d): oracle AUC {m_oracle['roc_auc']:.4f}, ceiling {m_fair['roc_auc']:.4f}"
            f" (gap {gap:.4f}), ceiling ECE {m_fair['ece']:.4f}"
        )
    command = (
        f"bench/oracle_ceiling.py --seed {args.seed} --samples {args.samples} --prior {args.prior}"
        f" --plan {args.plan}"
    )
    emit("oracle_ceiling", {**result, "command": command}, summary)


if __name__ == "__main__":
    main()
