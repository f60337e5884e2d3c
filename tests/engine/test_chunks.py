"""Chunked features equal the whole-history ones, on a synthetic shop cut into many chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.baseline import fit_baseline
from engine.chunks import build_features_chunked, chunk_of, n_chunks_for, split_history
from engine.features import build_features
from engine.frames import history_at
from simulators.shops import generate
from tests.support.shop_frames import shop_frames


@pytest.fixture(scope="module")
def history():
    shop = generate(800, seed=5)
    return history_at(shop_frames(shop), pd.Timestamp(shop.as_of))


def test_chunked_features_are_identical_to_the_whole_history_ones(history) -> None:
    baseline = fit_baseline(history)
    whole = build_features(history, baseline)
    chunked = build_features_chunked(history, baseline, chunk_customers=100)
    assert n_chunks_for(history, 100) >= 5
    pd.testing.assert_frame_equal(chunked, whole)


def test_chunks_partition_every_frame_by_customer(history) -> None:
    chunks = list(split_history(history, 4))
    for name in ("orders", "lines", "events", "customers"):
        frames = [getattr(c.frames, name) for c in chunks]
        assert sum(len(f) for f in frames) == len(getattr(history.frames, name))
        ids = [set(f["customer_id"]) for f in frames]
        assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :]), name
    assert all(len(c.frames.campaigns) == len(history.frames.campaigns) for c in chunks)


def test_a_customer_chunk_is_stable_across_processes_and_runs() -> None:
    # The hash is keyed and fixed: a change here would move customers between Dask partitions.
    ids = pd.Series(["1", "2", "abc", "customer-42"])
    assert chunk_of(ids, 1000).tolist() == [966, 110, 944, 355]
    assert np.all((chunk_of(ids, 3) >= 0) & (chunk_of(ids, 3) < 3))


def test_chunk_size_must_be_positive(history) -> None:
    with pytest.raises(ValueError, match="chunk_customers"):
        n_chunks_for(history, 0)
