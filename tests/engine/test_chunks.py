"""A shop read in customer chunks gives the whole history's features and scores, on a synthetic shop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.baseline import fit_baseline
from engine.chunks import (
    HistoryChunks,
    build_features_chunked,
    chunk_features,
    chunk_of,
    gather,
    n_chunks_for,
    split_history,
)
from engine.features import build_features, shop_totals
from engine.frames import History, history_at
from engine.models import TrainingConfig
from engine.replenishment import gap_stats, item_cycles
from engine.scoring import score_chunks, score_customers
from simulators.shops import generate
from tests.support.shop_frames import shop_frames

FAST = TrainingConfig(n_cutoffs=4)


@pytest.fixture(scope="module")
def history() -> History:
    shop = generate(800, seed=5)
    return history_at(shop_frames(shop), pd.Timestamp(shop.as_of))


@pytest.fixture(scope="module")
def source(history) -> HistoryChunks:
    # The uncut frames: the chunked path cuts each chunk at the cutoff itself.
    return HistoryChunks(shop_frames(generate(800, seed=5)), 6)


@pytest.fixture(scope="module")
def whole(history):
    return score_customers(history, config=FAST)


def test_chunked_features_are_identical_to_the_whole_history_ones(history) -> None:
    baseline = fit_baseline(history)
    whole = build_features(history, baseline)
    chunked = build_features_chunked(history, baseline, chunk_customers=100)
    assert n_chunks_for(history, 100) >= 5
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)


def test_features_from_gathered_chunks_are_identical_to_the_whole_history_ones(history, source) -> None:
    inputs = gather(source, history.cutoff)
    parts = [chunk_features(history_at(source.chunk(i), history.cutoff), inputs)[0] for i in range(6)]
    whole = build_features(history)
    chunked = pd.concat(parts).sort_index()
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)
    assert chunked["refill_items"].notna().sum() > 100  # the refill cycles really were shared
    assert chunked["shop_rate_ly_30"].between(0.01, 0.99).all()


def test_refill_cycles_from_summed_chunk_counts_equal_the_whole_shops(history) -> None:
    whole = item_cycles(gap_stats(history, level="category"))
    totals = [gap_stats(part, level="category") for part in split_history(history, 5)]
    summed = totals[0] + totals[1] + totals[2] + totals[3] + totals[4]
    assert len(whole) >= 3
    pd.testing.assert_frame_equal(item_cycles(summed), whole, check_exact=True)
    rates = (shop_totals(history)).shop_wide().rates
    parts = [shop_totals(part) for part in split_history(history, 5)]
    assert sum(parts[1:], parts[0]).shop_wide().rates == rates


def test_chunked_scoring_equals_whole_history_scoring_when_the_sample_holds_every_chunk(
    history, source, whole
) -> None:
    chunked = score_chunks(source, history.cutoff, config=FAST)
    assert chunked.trained_on == history.orders["customer_id"].nunique()
    assert {n: m.kind for n, m in chunked.models.items()} == {n: m.kind for n, m in whole.models.items()}
    pd.testing.assert_frame_equal(chunked.scores, whole.scores)


def test_given_models_score_every_chunk_as_the_whole_history(history, source, whole) -> None:
    chunked = score_chunks(source, history.cutoff, config=FAST, models=whole.models)
    assert chunked.trained_on == 0
    pd.testing.assert_frame_equal(chunked.scores, whole.scores)


def test_training_reads_only_the_first_chunks_up_to_the_sample_size(history, source, whole) -> None:
    buyers = history.orders["customer_id"].nunique()
    sampled = score_chunks(source, history.cutoff, config=FAST, max_train_customers=buyers // 2)
    assert 0 < sampled.trained_on <= buyers // 2
    assert sampled.models["purchase"].n_train < whole.models["purchase"].n_train
    # Every buyer is still scored, with the shop's baseline fitted on all of them.
    assert sampled.scores["customer_id"].tolist() == whole.scores["customer_id"].tolist()
    assert len(sampled.baseline.summary) == buyers
    assert "models trained on" in sampled.messages[-1]


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
    assert chunk_of(ids, 1000).tolist() == [792, 407, 944, 923]
    assert np.all((chunk_of(ids, 3) >= 0) & (chunk_of(ids, 3) < 3))


def test_a_chunk_holds_customers_of_every_validation_bucket() -> None:
    # Training reads the first chunk; the models split it into training and validation customers by
    # pandas' default hash modulo 5 (engine.models). With 20 chunks (a 1M-people shop) a chunk hash
    # that shared it put every customer of chunk 0 in the validation bucket: nothing to train on.
    ids = pd.Series([str(i) for i in range(20_000)])
    first = ids[chunk_of(ids, 20) == 0]
    buckets = pd.util.hash_pandas_object(first, index=False).to_numpy() % 5
    assert np.bincount(buckets.astype(int), minlength=5).min() > 0.15 * len(first)


def test_chunk_size_must_be_positive(history) -> None:
    with pytest.raises(ValueError, match="chunk_customers"):
        n_chunks_for(history, 0)
    with pytest.raises(ValueError, match="n_chunks"):
        HistoryChunks(history.frames, 0)
