"""The RFM baseline: what buyers in the same recency x frequency cell did over the last horizon.

Recency is scored in quintiles (5 = most recent), frequency as the order count capped at 5. The cell
means come from the window just before the cutoff, so RFM, like every model here, only uses the past.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TARGETS = ("bought", "n_orders", "spend")


def rfm_cells(features: pd.DataFrame) -> pd.Series:
    recency_rank = features["recency_days"].rank(method="first", ascending=False, pct=True)
    r = np.ceil(recency_rank * 5).clip(1, 5).astype(int)
    f = features["n_orders"].clip(1, 5).astype(int)
    return "R" + r.astype(str) + "F" + f.astype(str)


@dataclass(frozen=True)
class RFMTable:
    """Mean outcome per RFM cell, with the overall mean for cells never seen."""

    cells: pd.DataFrame
    overall: pd.Series

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        looked_up = self.cells.reindex(rfm_cells(features).to_numpy())
        looked_up = looked_up.fillna(self.overall)
        return pd.DataFrame(
            {
                "p_purchase": looked_up["bought"].to_numpy(),
                "expected_orders": looked_up["n_orders"].to_numpy(),
                "expected_spend": looked_up["spend"].to_numpy(),
            },
            index=features.index,
        )


def fit_rfm(features: pd.DataFrame, labels: pd.DataFrame) -> RFMTable:
    """Cell means of bought / n_orders / spend for buyers scored at an earlier cutoff."""
    frame = labels[list(TARGETS)].assign(cell=rfm_cells(features).to_numpy())
    return RFMTable(cells=frame.groupby("cell").mean(), overall=labels[list(TARGETS)].mean())
