"""Features computed one customer-hash chunk at a time, so their working memory stays flat as a shop grows.

Every per-customer feature reads only that customer's rows, so a history cut into chunks by a stable hash of
the customer id (the same customer always lands in the same chunk, in any process) gives, chunk by chunk,
exactly the rows the whole-history computation would have grouped. What needs other customers' rows (the
BTYD fit, item refill cycles, shop repeat rates) is computed once on the whole history and shared. The
groupby intermediates, which are several times the size of the frames, then exist for one chunk at a time.
The Dask backend (`engine.dask_backend`) uses the same chunks as partitions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from engine.baseline import Baseline
from engine.features import FEATURE_COLUMNS, SHOP_WIDE_COLUMNS, build_features, shop_wide_features
from engine.frames import History, ShopFrames

# Below this many buyers per chunk the fixed cost of each groupby pass outweighs the memory saved.
DEFAULT_CHUNK_CUSTOMERS = 50_000


def chunk_of(ids: pd.Series, n_chunks: int) -> np.ndarray:
    """The chunk (0 .. n_chunks - 1) of each customer id: a keyed hash that is stable across processes."""
    hashed = pd.util.hash_pandas_object(ids.astype(str), index=False, categorize=True).to_numpy()
    return (hashed % np.uint64(n_chunks)).astype(np.int64)


def n_chunks_for(history: History, chunk_customers: int) -> int:
    """How many chunks keep each at about `chunk_customers` buyers (at least one)."""
    if chunk_customers < 1:
        raise ValueError(f"chunk_customers must be at least 1, got {chunk_customers}")
    buyers = int(history.orders["customer_id"].nunique())
    return max(1, -(-buyers // chunk_customers))


def _codes(frame: pd.DataFrame, n_chunks: int) -> np.ndarray:
    """Chunk of every row, hashing each distinct id once (events repeat an id dozens of times)."""
    codes, uniques = pd.factorize(frame["customer_id"])
    if len(uniques) == 0:
        return np.zeros(len(frame), dtype=np.int64)
    return chunk_of(pd.Series(uniques), n_chunks)[codes]


def split_history(history: History, n_chunks: int) -> Iterator[History]:
    """The history's customers in `n_chunks` disjoint histories (same cutoff), one at a time.

    Campaigns are not per customer, so every chunk sees all of them. A generator, so only one chunk's
    copy of the rows is alive at a time.
    """
    frames = history.frames
    per_customer = {name: getattr(frames, name) for name in ("orders", "lines", "events", "customers")}
    codes = {name: _codes(frame, n_chunks) for name, frame in per_customer.items()}
    for chunk in range(n_chunks):
        parts = {name: frame[codes[name] == chunk] for name, frame in per_customer.items()}
        yield History(frames=ShopFrames(**parts, campaigns=frames.campaigns), cutoff=history.cutoff)


def assemble(parts: list[pd.DataFrame], shared: pd.DataFrame) -> pd.DataFrame:
    """Chunk feature frames into the whole-history frame: sorted by customer, shop-wide columns shared."""
    feats = pd.concat(parts).sort_index(kind="stable")
    feats[list(SHOP_WIDE_COLUMNS)] = shared.reindex(feats.index)[list(SHOP_WIDE_COLUMNS)]
    return feats.reindex(columns=list(FEATURE_COLUMNS)).astype("float64")


def build_features_chunked(
    history: History, baseline: Baseline, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS
) -> pd.DataFrame:
    """`engine.features.build_features`, computed chunk by chunk; identical values, flatter memory."""
    n_chunks = n_chunks_for(history, chunk_customers)
    if n_chunks == 1:
        return build_features(history, baseline)
    parts = [build_features(part, baseline) for part in split_history(history, n_chunks) if len(part.orders)]
    return assemble(parts, shop_wide_features(history))
