"""A shop in customer-hash chunks, so features and scores need one chunk's rows in memory at a time.

Every per-customer feature reads only that customer's rows, so a shop cut into chunks by a stable hash of
the customer id (the same customer always lands in the same chunk, in any process) gives, chunk by chunk,
exactly the rows the whole-history computation would have grouped. What needs other customers' rows (the
BTYD fit, item refill cycles, shop repeat rates) is gathered from every chunk in a first pass, as small
per-buyer summaries and counts that add up (`gather`), and shared with each chunk in the second.

Where the chunks come from is a `ChunkSource`: an in-memory history (`HistoryChunks`, what the local and
Dask backends cut), or a reader that fetches one chunk's rows from disk or a database (the daemon's store,
`sync.frames.StoreChunks`; the benchmark's partitioned files), which is what keeps memory flat as a shop
grows. The Dask backend (`engine.dask_backend`) uses the same chunks as partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from engine.baseline import Baseline, baseline_from_summary
from engine.btyd import btyd_summary
from engine.features import FEATURE_COLUMNS, ShopWide, build_features, shop_totals
from engine.frames import History, ShopFrames, history_at

# Below this many buyers per chunk the fixed cost of each groupby pass outweighs the memory saved.
DEFAULT_CHUNK_CUSTOMERS = 50_000
PER_CUSTOMER = ("orders", "lines", "events", "customers")
CHUNK_HASH_KEY = "espd-chunk-hash1"  # 16 characters, as pandas' hash key must be


class ChunkSource(Protocol):
    """A shop cut into `n_chunks` disjoint sets of customers by a stable function of their id (`chunk_of`
    for frames in memory; the store uses `profile_id % 1024`, which SQL computes). Training reads the
    first chunks, so the function should not follow behaviour (a hash or modulo does not).

    `chunk(i)` returns the validated frames of chunk i's customers (every campaign, which is not per
    customer); reading them is the source's business. Chunks may be read several times (one pass to
    gather the shop-wide inputs, one to score), so a source should not hold them all.
    """

    @property
    def n_chunks(self) -> int: ...

    def chunk(self, index: int) -> ShopFrames: ...


def chunk_of(ids: pd.Series, n_chunks: int) -> np.ndarray:
    """The chunk (0 .. n_chunks - 1) of each customer id: a keyed hash that is stable across processes.

    Its own key: the models split customers into validation and training by pandas' default-keyed hash
    modulo 5, so with that hash every customer of chunk 0 of 20 chunks (the training sample) would have
    been a validation customer, and nothing would have been left to train on.
    """
    hashed = pd.util.hash_pandas_object(
        ids.astype(str), index=False, categorize=True, hash_key=CHUNK_HASH_KEY
    ).to_numpy()
    return (hashed % np.uint64(n_chunks)).astype(np.int64)


def n_chunks_for(history: History, chunk_customers: int) -> int:
    """How many chunks keep each at about `chunk_customers` buyers (at least one)."""
    return chunks_for_buyers(int(history.orders["customer_id"].nunique()), chunk_customers)


def chunks_for_buyers(buyers: int, chunk_customers: int) -> int:
    """How many chunks keep each at about `chunk_customers` of `buyers` (at least one)."""
    if chunk_customers < 1:
        raise ValueError(f"chunk_customers must be at least 1, got {chunk_customers}")
    return max(1, -(-buyers // chunk_customers))


def _codes(frame: pd.DataFrame, n_chunks: int) -> np.ndarray:
    """Chunk of every row, hashing each distinct id once (events repeat an id dozens of times)."""
    codes, uniques = pd.factorize(frame["customer_id"])
    if len(uniques) == 0:
        return np.zeros(len(frame), dtype=np.int64)
    return chunk_of(pd.Series(uniques), n_chunks)[codes]


class HistoryChunks:
    """The customers of frames already in memory, as a `ChunkSource` (each chunk is a filtered copy)."""

    def __init__(self, frames: ShopFrames, n_chunks: int) -> None:
        if n_chunks < 1:
            raise ValueError(f"n_chunks must be at least 1, got {n_chunks}")
        self.frames = frames
        self._n_chunks = n_chunks
        self._codes = {name: _codes(getattr(frames, name), n_chunks) for name in PER_CUSTOMER}

    @property
    def n_chunks(self) -> int:
        return self._n_chunks

    def chunk(self, index: int) -> ShopFrames:
        parts = {name: getattr(self.frames, name)[self._codes[name] == index] for name in PER_CUSTOMER}
        return ShopFrames(**parts, campaigns=self.frames.campaigns)


def split_history(history: History, n_chunks: int) -> Iterator[History]:
    """The history's customers in `n_chunks` disjoint histories (same cutoff), one at a time."""
    source = HistoryChunks(history.frames, n_chunks)
    for index in range(n_chunks):
        yield History(frames=source.chunk(index), cutoff=history.cutoff)


def concat_frames(parts: list[ShopFrames]) -> ShopFrames:
    """Chunks' frames as one shop's (their campaigns are the same, so the first chunk's are kept).

    Each customer's rows keep their relative order, so every per-customer aggregate sums in the same
    order as on the whole shop, and is bit-for-bit the same.
    """
    joined = {name: pd.concat([getattr(p, name) for p in parts], ignore_index=True) for name in PER_CUSTOMER}
    return ShopFrames(**joined, campaigns=parts[0].campaigns)


@dataclass(frozen=True)
class ShopInputs:
    """What every chunk's features need from the whole shop at one cutoff, and the shop's size."""

    baseline: Baseline
    shop: ShopWide
    buyers_per_chunk: list[int]


def gather(
    source: ChunkSource, cutoff: pd.Timestamp, keep: Callable[[int, History], None] | None = None
) -> ShopInputs:
    """Pass one: the BTYD summary of every buyer and the shop-wide counts, read chunk by chunk.

    `keep(index, history)` sees each chunk's history as it passes (to hold on to a training sample
    without reading those chunks again).
    """
    summaries, totals, buyers = [], None, []
    for index in range(source.n_chunks):
        history = history_at(source.chunk(index), cutoff)
        summaries.append(btyd_summary(history))
        part = shop_totals(history)
        totals = part if totals is None else totals + part
        buyers.append(len(summaries[-1]))
        if keep is not None:
            keep(index, history)
    summary = pd.concat(summaries).sort_index(kind="stable")
    assert totals is not None  # a source has at least one chunk
    return ShopInputs(baseline_from_summary(summary), totals.shop_wide(), buyers)


def chunk_features(history: History, inputs: ShopInputs) -> tuple[pd.DataFrame, Baseline]:
    """Pass two, for one chunk: its buyers' features and the shop's baseline restricted to them."""
    ids = pd.Index(history.orders["customer_id"].unique(), name="customer_id").sort_values()
    baseline = inputs.baseline.for_customers(ids)
    if ids.empty:
        return empty_features(), baseline
    return build_features(history, baseline, inputs.shop), baseline


def empty_features() -> pd.DataFrame:
    """A feature frame without buyers: what a chunk without buyers yields, and the frames' schema."""
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in FEATURE_COLUMNS}).rename_axis("customer_id")


def shop_inputs(history: History, baseline: Baseline) -> ShopInputs:
    """The `ShopInputs` of a history already in memory, with its already fitted baseline."""
    return ShopInputs(baseline, shop_totals(history).shop_wide(), [len(baseline.summary)])


def assemble(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Chunk feature frames into the whole-history frame, sorted by customer as it would be."""
    return pd.concat(parts).sort_index(kind="stable").reindex(columns=list(FEATURE_COLUMNS)).astype("float64")


def build_features_chunked(
    history: History, baseline: Baseline, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS
) -> pd.DataFrame:
    """`engine.features.build_features`, computed chunk by chunk; identical values, flatter memory."""
    n_chunks = n_chunks_for(history, chunk_customers)
    if n_chunks == 1:
        return build_features(history, baseline)
    inputs = shop_inputs(history, baseline)
    return assemble([chunk_features(part, inputs)[0] for part in split_history(history, n_chunks)])
