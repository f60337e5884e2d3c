"""A small shop simulated from the BG/NBD story with known parameters (fast, no email events).

Each customer gets a purchase rate λ ~ Gamma(r, α) per day and a dropout probability p ~ Beta(a, b);
after every repeat purchase they leave with probability p (the first purchase never ends a life).
Used where a test needs many shapes of history
quickly (leakage, cold start, CLI) or needs the true BG/NBD parameters (fit recovery).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-01-01", tz="UTC")


def simulate_orders(
    n_customers: int,
    seed: int,
    days: int = 720,
    params: tuple[float, float, float, float] = (0.6, 40.0, 1.5, 6.0),
) -> pd.DataFrame:
    """Orders (customer_id, order_id, ordered_at, amount, discount) over `days` from START."""
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, float, float]] = []
    for i in range(n_customers):
        lam, p = rng.gamma(r, 1 / alpha), rng.beta(a, b)
        spend = rng.gamma(4.0, 12.0)
        t, first = rng.uniform(0, days * 0.8), True
        while t < days:
            rows.append((f"c{i:05d}", t, spend * rng.gamma(8.0, 1 / 8.0)))
            if not first and rng.random() < p:
                break
            t, first = t + rng.exponential(1 / lam), False
    frame = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    frame["ordered_at"] = START + pd.to_timedelta(frame["day"], unit="D")
    frame["order_id"] = [f"o{k:07d}" for k in range(len(frame))]
    frame["discount"] = np.where(rng.random(len(frame)) < 0.2, 5.0, 0.0)
    return frame[["customer_id", "order_id", "ordered_at", "amount", "discount"]]
