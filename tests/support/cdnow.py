"""CDNOW (Fader & Hardie's public CD-retailer panel, 23,570 customers, 1997-01..1998-06) as an orders CSV.

The transaction file ships inside the `lifetimes` wheel (a `dev` extra). It is located without
importing `lifetimes` (whose import is slow and not needed), and same-day rows of one customer are
merged into one order, as the BTYD literature does.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd


def cdnow_master_path() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the `lifetimes` package (dev extra) ships CDNOW; install espd[dev]")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "CDNOW_master.txt"


def cdnow_orders() -> pd.DataFrame:
    """Orders with the espd CSV columns customer_id, order_id, ordered_at, amount, quantity."""
    raw = pd.read_csv(cdnow_master_path(), sep=r"\s+", dtype={"customer_id": str, "date": str})
    raw["ordered_at"] = pd.to_datetime(raw["date"], format="%Y%m%d", utc=True)
    orders = raw.groupby(["customer_id", "ordered_at"], as_index=False).agg(
        amount=("dollar_value", "sum"), quantity=("number_of_cds", "sum")
    )
    orders["order_id"] = orders["customer_id"] + "-" + orders["ordered_at"].dt.strftime("%Y%m%d")
    return orders[["customer_id", "order_id", "ordered_at", "amount", "quantity"]]


def write_cdnow_csv(path: Path) -> Path:
    cdnow_orders().to_csv(path, index=False)
    return path
