"""RFM quintile scores and the named RFM groups a marketer already knows (Champions ... Lost).

Input is the buyer feature frame of `engine.features.build_features` (or any frame indexed by
customer_id with `recency_days`, `n_orders` and `monetary_total`), so segments describe exactly the
buyers the models score, as of the same cutoff.

Scores (1 = worst, 5 = best), one rule for all three:

    score = 1 + floor(5 * share of buyers strictly worse than this one)

"Worse" is a longer recency, fewer orders, less total spend. Ties share a score: two customers with
the same numbers always land in the same group, which a rank-based `qcut` would not guarantee (it
splits a block of one-time buyers arbitrarily by row order). The price is that a score can skip
values when a block of ties is large: in a shop where 60 % bought once, F is 1 for all of them and
the next order count starts at F = 4.

Named groups come from a total 5 x 5 grid over R and FM = floor((F + M) / 2), the widely used
R-by-frequency segment map with monetary folded in, and its bottom-left cell split off as "Lost":

    R \\ FM   1                2                    3                    4                5
    5        New Customers    Potential Loyalists  Potential Loyalists  Champions        Champions
    4        Promising        Potential Loyalists  Potential Loyalists  Loyal Customers  Loyal Customers
    3        About To Sleep   About To Sleep       Need Attention       Loyal Customers  Loyal Customers
    2        Hibernating      Hibernating          At Risk              At Risk          Can't Lose Them
    1        Lost             Hibernating          At Risk              At Risk          Can't Lose Them

Every (R, FM) pair has exactly one name, so no precedence order is needed and no buyer is unnamed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine._behaviour import require_columns

RFM_INPUT_COLUMNS = ("recency_days", "n_orders", "monetary_total")
OUTPUT_COLUMNS = ("customer_id", "rfm_r", "rfm_f", "rfm_m", "rfm_score", "rfm_segment")

SEGMENT_NAMES = (
    "Champions",
    "Loyal Customers",
    "Potential Loyalists",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Hibernating",
    "Lost",
)

_C, _L, _P = "Champions", "Loyal Customers", "Potential Loyalists"
_S, _A, _H, _K = "About To Sleep", "At Risk", "Hibernating", "Can't Lose Them"
# Rows are R = 1..5, columns FM = 1..5 (the table in the module docstring, upside down).
SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    ("Lost", _H, _A, _A, _K),
    (_H, _H, _A, _A, _K),
    (_S, _S, "Need Attention", _L, _L),
    ("Promising", _P, _P, _L, _L),
    ("New Customers", _P, _P, _C, _C),
)


def quintile_score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """1..5 from the share of values strictly worse; equal values always get equal scores."""
    ranked = values.rank(method="min", ascending=higher_is_better, na_option="top")
    share_worse = (ranked - 1.0) / max(len(values), 1)
    return (1 + np.floor(5 * share_worse)).clip(1, 5).astype("int64")


def segment_name(r: np.ndarray, fm: np.ndarray) -> np.ndarray:
    """The named group of each (R, FM) pair, scores 1..5."""
    grid = np.array(SEGMENT_GRID, dtype=object)
    return grid[np.asarray(r, dtype=int) - 1, np.asarray(fm, dtype=int) - 1]


def rfm_segments(features: pd.DataFrame) -> pd.DataFrame:
    """R, F, M scores, the three-digit `rfm_score` ("545") and the named `rfm_segment` per buyer.

    Missing recency or spend (should not happen for buyers) counts as the worst value, so a broken
    row lands in a low score instead of disappearing.
    """
    require_columns(features, RFM_INPUT_COLUMNS, "features")
    r = quintile_score(features["recency_days"], higher_is_better=False)
    f = quintile_score(features["n_orders"])
    m = quintile_score(features["monetary_total"])
    fm = (f + m) // 2
    out = pd.DataFrame(
        {
            "customer_id": features.index.astype(str),
            "rfm_r": r.to_numpy(),
            "rfm_f": f.to_numpy(),
            "rfm_m": m.to_numpy(),
            "rfm_score": (r.astype(str) + f.astype(str) + m.astype(str)).to_numpy(),
            "rfm_segment": segment_name(r.to_numpy(), fm.to_numpy()),
        }
    )
    return out.loc[:, list(OUTPUT_COLUMNS)].reset_index(drop=True)
