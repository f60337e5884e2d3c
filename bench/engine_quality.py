"""Print the engine's quality figures: synthetic `small` shop vs the oracle, and CDNOW vs BG/NBD + GG.

    .venv/bin/python bench/engine_quality.py [--seed 7] [--horizon-days 30] [--churn-horizon-days 90]
        [--no-cdnow]

The synthetic shop is scored at its as_of; outcomes and the oracle (true rates, history only) come
from the shop's truth. Acceptance asks for ROC AUC within 0.02 of the oracle and ECE <= 0.03.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.backtest import backtest
from engine.frames import frames_from_order_rows, history_at
from engine.metrics import binary_metrics
from engine.scoring import score_customers
from simulators.shop_truth import labels, oracle_purchase_probability
from simulators.shops import generate_with_truth
from tests.support.cdnow import cdnow_orders
from tests.support.shop_frames import shop_frames


def synthetic(seed: int, horizon: int, churn_horizon: int) -> pd.DataFrame:
    shop, truth = generate_with_truth("small", seed=seed, as_of=datetime(2025, 1, 1, tzinfo=UTC))
    started = time.perf_counter()
    result = score_customers(history_at(shop_frames(shop), truth.as_of), horizon, churn_horizon)
    print(f"synthetic small seed={seed}: scored in {time.perf_counter() - started:.1f}s")
    print("\n".join(f"  {m}" for m in result.messages))
    scores = result.scores.assign(person_id=result.scores["customer_id"].astype(int)).set_index("person_id")
    baseline = pd.DataFrame(
        {"p30": result.now.baseline.p_purchase(horizon), "pc": result.now.baseline.p_purchase(churn_horizon)},
        index=result.now.features.index.astype(int),
    )
    rows = {}
    for name, h, espd_p, base_p in (
        ("purchase", horizon, scores["p_purchase"], baseline["p30"]),
        ("active (1 - churn)", churn_horizon, 1 - scores["churn_risk"], baseline["pc"]),
    ):
        oracle = oracle_purchase_probability(truth, truth.as_of, h).set_index("person_id")["p_purchase"]
        y = labels(truth, truth.as_of, h).set_index("person_id")["bought"].astype(float)
        idx = scores.index.intersection(oracle.index)
        for method, p in (("espd", espd_p), ("oracle", oracle), ("bgnbd_gg", base_p)):
            rows[(name, method)] = binary_metrics(y.loc[idx].to_numpy(), np.asarray(p.loc[idx]))
    return pd.DataFrame(rows).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--horizon-days", type=int, default=30)
    parser.add_argument("--churn-horizon-days", type=int, default=90)
    parser.add_argument("--no-cdnow", action="store_true", help="only the synthetic shop")
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    print(synthetic(args.seed, args.horizon_days, args.churn_horizon_days).round(4))
    if args.no_cdnow:
        return
    frames, _ = frames_from_order_rows(cdnow_orders())
    started = time.perf_counter()
    cdnow = backtest(frames, "1997-10-01", 90, 90)
    print(f"\nCDNOW cutoff 1997-10-01, 90 days ({time.perf_counter() - started:.1f}s)")
    print(cdnow.table.round(4))


if __name__ == "__main__":
    main()
