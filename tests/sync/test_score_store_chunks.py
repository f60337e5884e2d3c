"""The score stage reads the store one customer chunk at a time and gives the values of a single read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, delete

from connectors.base import Page
from connectors.records import Profile
from engine.models import TrainedModel
from engine.scoring import gather_chunks, model_specs, score_gathered
from sync import tables
from sync.config import EngineConfig, SegmentsConfig
from sync.frames import StoreChunks, load_attributes, load_frames
from sync.ingest import IngestPolicy, write_page
from sync.scoring import (
    DIGEST_OUTPUT,
    _DigestedChunks,
    _fingerprint,
    _frame_digest,
    _segment_inputs,
    score_store,
)
from sync.segments_stage import SegmentStage
from sync.store import session_scope
from tests.sync.shop_store import fill_store

NOW = datetime(2026, 11, 23, 6, tzinfo=UTC)
TYPES = {"shop": "shopify"}
SEGMENTS = SegmentsConfig.model_validate(
    {"rules": [{"name": "big_spenders", "when": "clv_365 >= 100"}], "control_group": {"share": 0.2}}
)
# Outputs whose shop-wide part is gathered exactly from every chunk (all but the engagement model's).
EXACT = (
    "lifecycle_stage",
    "rfm_segment",
    "rfm_score",
    "microsegment",
    "microsegment_id",
    "best_send_hour_of_week",
    "best_send_hour_local",
    "replenishment_date",
    "replenishment_category",
    "discount_score",
    "discount_band",
    "next_best_category",
    "control_group",
)


@pytest.fixture
def filled(store_engine: Engine) -> Engine:
    fill_store(store_engine)
    return store_engine


# The engagement model is fitted on the first chunk: its values are only those of one read when the
# first chunk is the whole shop. (`model_kind` is the kind of whichever output was read last.)
SAMPLED = frozenset(("p_open_30d", "engagement_band", "model_kind"))


def _values(scores: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The scores but the sampled ones, and without the input digests' basis prefix (the chunk size is
    a setting, so in the basis); for the sampled ones, whether there is a value."""
    return {
        pid: {
            k: (v.split(":")[-1] if k == DIGEST_OUTPUT else (v is not None) if k in SAMPLED else v)
            for k, v in row.items()
        }
        for pid, row in scores.items()
    }


def test_scoring_the_store_in_chunks_gives_the_values_of_one_chunk(filled: Engine) -> None:
    # min_buyers=50 trains LightGBM on the 220-person shop; 60 buyers per chunk makes several chunks,
    # all within the core models' training sample, so every output but engagement must be equal.
    whole = score_store(filled, TYPES, EngineConfig(min_buyers=50), NOW, SEGMENTS)
    with session_scope(filled) as session:  # the chunked run trains its own models
        session.execute(delete(tables.Model))
    settings = EngineConfig(min_buyers=50, chunk_customers=60)
    chunked = score_store(filled, TYPES, settings, NOW, SEGMENTS)
    assert whole.trained and chunked.trained
    assert len(whole.scores) > 150
    assert _values(chunked.scores) == _values(whole.scores)
    # Between retrains the registry's promoted models score the chunks.
    later = score_store(filled, TYPES, settings, NOW + timedelta(days=1), SEGMENTS)
    assert not later.trained and any(m.startswith("scored with models trained on") for m in later.messages)
    assert later.scores.keys() == whole.scores.keys()


def test_consent_exclusion_applies_to_every_chunk(filled: Engine) -> None:
    everyone = score_store(filled, TYPES, EngineConfig(min_buyers=100_000), NOW, SEGMENTS)
    excluded = set(sorted(everyone.scores)[::7])
    settings = EngineConfig(min_buyers=100_000, chunk_customers=40)
    chunked = score_store(filled, TYPES, settings, NOW, SEGMENTS, exclude=excluded)
    whole = score_store(filled, TYPES, EngineConfig(min_buyers=100_000), NOW, SEGMENTS, exclude=excluded)
    assert excluded and excluded.isdisjoint(chunked.scores)
    assert _values(chunked.scores) == _values(whole.scores)


def _stage_outputs(engine: Engine, n_chunks: int) -> pd.DataFrame:
    """The segment outputs of the store read in `n_chunks`, scored with baseline models."""
    source = StoreChunks(engine, TYPES, n_chunks)
    stage = SegmentStage(_segment_inputs(engine, SEGMENTS))
    cutoff = pd.Timestamp(NOW).floor("D")
    gathered = gather_chunks(source, cutoff, train=False, observe=stage.gathered)
    stage.fit()
    models = {s.name: TrainedModel(s, "baseline", "test") for s in model_specs(30, 90)}
    result = score_gathered(source, gathered, models=models, scored=stage.scored)
    return stage.outputs(result.scores, load_attributes(engine, ["country"])).frame


def test_a_sampled_engagement_model_scores_everyone_and_exact_parts_stay_equal(filled: Engine) -> None:
    one = _stage_outputs(filled, 1)
    sampled = _stage_outputs(filled, 4)  # the engagement model sees the first chunk only
    assert sorted(one.index) == sorted(sampled.index)
    for output in EXACT:
        pd.testing.assert_series_equal(
            sampled[output].sort_index(), one[output].sort_index(), check_dtype=False, obj=output
        )
    with_mail = one["p_open_30d"].notna()
    assert with_mail.sum() > 100
    assert sampled.loc[with_mail[with_mail].index, "p_open_30d"].between(0, 1).all()
    assert sampled["p_open_30d"].notna().sum() == with_mail.sum()


def test_microsegment_ids_survive_a_chunked_rescore(filled: Engine) -> None:
    settings = EngineConfig(min_buyers=100_000, chunk_customers=50)
    first = score_store(filled, TYPES, settings, NOW, SEGMENTS)
    with session_scope(filled) as session:  # a rescore of the same data, matched to the kept centroids
        session.execute(delete(tables.Score))
    later = score_store(filled, TYPES, settings, NOW, SEGMENTS)
    assert not later.reused
    ids = {pid: s.get("microsegment_id") for pid, s in first.scores.items() if "microsegment_id" in s}
    assert len(set(ids.values())) >= 2
    assert ids == {pid: s.get("microsegment_id") for pid, s in later.scores.items() if pid in ids}


def test_the_fingerprint_does_not_depend_on_the_chunking(filled: Engine) -> None:
    # Same basis (the chunk size is part of it): a store read in 1 or 5 chunks names the same version.
    attributes = load_attributes(filled, ["country"])
    digests = []
    for n in (1, 5):
        source = _DigestedChunks(StoreChunks(filled, TYPES, n), attributes, "basis")
        for index in range(n):
            source.chunk(index)
        digests.append((source.fingerprint(), source.input_digests().sort_index()))
    frames, _ = load_frames(filled, TYPES)
    whole = [_frame_digest(f) for f in (frames.orders, frames.lines, frames.events, frames.customers)]
    assert digests[0][0] == digests[1][0] == _fingerprint(whole, "basis")
    pd.testing.assert_series_equal(digests[0][1], digests[1][1])


def test_a_chunk_size_below_one_buyer_is_refused() -> None:
    with pytest.raises(ValidationError, match="chunk_customers"):
        EngineConfig(chunk_customers=0)
    assert EngineConfig().chunk_customers == 50_000


def test_a_store_without_orders_is_digested_but_not_scored(store_engine: Engine) -> None:
    # Pass one reads every chunk before anything knows there are no buyers: the fits must not fail.
    profiles = [
        Profile(source="shop", vendor_id=str(i), email=f"p{i}@example.org",
                created_at=NOW - timedelta(days=3), updated_at=NOW)
        for i in range(5)
    ]  # fmt: skip
    with session_scope(store_engine) as session:
        write_page(session, "shop", "customers", Page(profiles, {}), IngestPolicy(timedelta(days=1), NOW))
    report = score_store(store_engine, TYPES, EngineConfig(), NOW)
    assert report.version and report.scored == 0
    assert report.messages == ["no orders yet: every customer gets the fields' unknown values"]
