"""The store read one customer chunk at a time (SQL picks it) gives the whole shop's frames and scores."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine, text

from engine.frames import ShopFrames, history_at
from engine.models import TrainingConfig
from engine.scoring import score_chunks, score_customers
from sync.frames import CHUNK_BUCKETS, StoreChunks, load_frames
from tests.sync.shop_store import AT, fill_store

TYPES = {"shop": "shopify"}
KEYS = {
    "orders": ["order_id"],
    "lines": ["order_id", "product_id", "quantity", "price"],
    "events": ["customer_id", "occurred_at", "kind", "campaign_id"],
    "customers": ["customer_id"],
}
# Enough buyers of the 220-person shop for LightGBM to train: boosters, not only baselines, are compared.
CONFIG = TrainingConfig(min_buyers=50, n_cutoffs=4)


def _sorted(frames: ShopFrames, name: str) -> pd.DataFrame:
    return getattr(frames, name).sort_values(KEYS[name], kind="stable").reset_index(drop=True)


@pytest.fixture
def filled(store_engine: Engine) -> Engine:
    fill_store(store_engine)
    return store_engine


def test_chunks_read_from_the_store_are_the_whole_shop_split_by_profile(filled: Engine) -> None:
    whole, _ = load_frames(filled, TYPES)
    source = StoreChunks(filled, TYPES, 3)
    chunks = [source.chunk(i) for i in range(3)]
    for name in KEYS:
        for index, chunk in enumerate(chunks):
            ids = getattr(chunk, name)["customer_id"].astype(int)
            assert ((ids % CHUNK_BUCKETS) % 3 == index).all(), name
        joined = pd.concat([getattr(c, name) for c in chunks], ignore_index=True)
        expected = _sorted(whole, name)
        pd.testing.assert_frame_equal(
            joined.sort_values(KEYS[name], kind="stable").reset_index(drop=True), expected, check_exact=True
        )
        assert len(expected) > 0, name


def test_scoring_the_store_chunk_by_chunk_equals_scoring_it_whole(filled: Engine) -> None:
    cutoff = pd.Timestamp(AT).floor("D")
    whole = score_customers(history_at(load_frames(filled, TYPES)[0], cutoff), config=CONFIG)
    chunked = score_chunks(StoreChunks(filled, TYPES, 3), cutoff, config=CONFIG)
    assert all(m.booster is not None for m in whole.models.values())
    assert {n: m.holdout for n, m in chunked.models.items()} == {
        n: m.holdout for n, m in whole.models.items()
    }
    pd.testing.assert_frame_equal(chunked.scores, whole.scores)


def test_the_chunk_indexes_exist_after_migrating(store_engine: Engine) -> None:
    # Expression indexes: SQLAlchemy's inspector skips them on SQLite, so the catalogues are asked.
    query = {
        "sqlite": "SELECT tbl_name, name FROM sqlite_master WHERE type = 'index'",
        "postgresql": "SELECT tablename, indexname FROM pg_indexes",
    }[store_engine.dialect.name]
    with store_engine.connect() as connection:
        found = set(connection.execute(text(query)).tuples())
    expected = {
        ("orders", "ix_orders_chunk"),
        ("events", "ix_events_chunk"),
        ("profiles", "ix_profiles_chunk"),
    }
    assert expected <= found


def test_a_chunk_outside_the_buckets_is_refused(store_engine: Engine) -> None:
    with pytest.raises(ValueError, match="chunk 3 of 3"):
        StoreChunks(store_engine, TYPES, 3).chunk(3)
