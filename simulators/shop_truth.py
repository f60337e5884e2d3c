"""The truth of a synthetic shop."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True, slots=True)
class ShopTruth:
    as_of: pd.Timestamp
    people: pd.DataFrame
    orders: pd.DataFrame
    exposures: pd.DataFrame
    campaigns: pd.DataFrame
