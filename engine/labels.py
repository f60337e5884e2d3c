"""Labels from rolling cutoffs: what each buyer did in the `horizon_days` after a cutoff.

A label window must end on or before the `History`'s own cutoff. Training examples for a model that
scores at date D are therefore cut at D - H, D - H - step, ... and labelled only with orders before D,
all read through `history_at`: a model never sees a day past D.
"""

from __future__ import annotations

import pandas as pd

from engine.frames import History, history_at

DAY = pd.Timedelta(days=1)


def outcomes(history: History, start: pd.Timestamp, horizon_days: int) -> pd.DataFrame:
    """Orders and spend per customer in [start, start + horizon); the window must be inside `history`."""
    end = start + horizon_days * DAY
    if end > history.cutoff:
        raise ValueError(
            f"label window {start.date()}..{end.date()} ends after the history cutoff "
            f"{history.cutoff.date()}: labels may only use known data"
        )
    orders = history.orders
    window = orders[(orders["ordered_at"] >= start) & (orders["ordered_at"] < end)]
    by = window.groupby("customer_id", sort=True)
    return pd.DataFrame({"n_orders": by.size().astype(float), "spend": by["amount"].sum()})


def label_frame(history: History, start: pd.Timestamp, horizon_days: int, index: pd.Index) -> pd.DataFrame:
    """Outcomes for the customers in `index` (0 when they did not buy), plus `bought`."""
    out = outcomes(history, start, horizon_days).reindex(index).fillna(0.0)
    out["bought"] = (out["n_orders"] > 0).astype(float)
    return out


def training_cutoffs(
    history: History, horizon_days: int, n_cutoffs: int, step_days: int, min_history_days: int
) -> list[pd.Timestamp]:
    """Cutoffs (latest first) whose label windows fit inside `history` and that have enough past."""
    if history.orders.empty:
        return []
    first = history.orders["ordered_at"].min()
    latest = history.cutoff - horizon_days * DAY
    candidates = (latest - k * step_days * DAY for k in range(n_cutoffs))
    return [c for c in candidates if c - first >= min_history_days * DAY]


def past_at(history: History, cutoff: pd.Timestamp) -> History:
    """The history as it was at an earlier `cutoff` (never later than what `history` knows)."""
    if cutoff > history.cutoff:
        raise ValueError(f"cutoff {cutoff.date()} is after the history cutoff {history.cutoff.date()}")
    return history_at(history.frames, cutoff)
