"""The shop-wide parts of the segment outputs add up over customer chunks to the whole shop's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from engine.affinity import co_purchase_counts, next_best, rules_from_counts
from engine.chunks import split_history
from engine.discount import discount_evidence, discount_sensitivity, score_discount
from engine.engagement import score_engagement
from engine.frames import History, history_at
from engine.lifecycle import lifecycle_counts, lifecycle_thresholds, thresholds_from_counts
from engine.send_time import best_send_times, fit_shop_pattern, send_time_counts
from simulators.shops import generate
from tests.support.shop_frames import shop_frames

N_CHUNKS = 4


@pytest.fixture(scope="module")
def history() -> History:
    shop = generate(600, seed=5)
    return history_at(shop_frames(shop), pd.Timestamp(shop.as_of))


@pytest.fixture(scope="module")
def chunks(history: History) -> list[History]:
    return list(split_history(history, N_CHUNKS))


def _sum(parts: list):  # type: ignore[no-untyped-def]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def test_lifecycle_thresholds_from_chunk_counts_are_the_whole_shops(history, chunks) -> None:
    counts = _sum([lifecycle_counts(c.orders) for c in chunks])
    assert counts.gaps.size > 100
    assert thresholds_from_counts(counts) == lifecycle_thresholds(history.orders)


def test_send_time_pattern_from_chunk_counts_is_the_whole_shops(history, chunks) -> None:
    shop = fit_shop_pattern(_sum([send_time_counts(c) for c in chunks]))
    whole = fit_shop_pattern(send_time_counts(history))
    np.testing.assert_array_equal(shop.pattern, whole.pattern)
    parts = [best_send_times(c, shop=shop) for c in chunks]
    for part in parts:  # each carries the pattern in attrs, an array pandas cannot compare in concat
        np.testing.assert_array_equal(part.attrs.pop("shop_pattern"), whole.pattern)
    per_chunk = pd.concat(parts).set_index("customer_id")
    expected = best_send_times(history).set_index("customer_id")
    expected.attrs.clear()
    pd.testing.assert_frame_equal(per_chunk.loc[expected.index], expected)


def test_co_purchase_rules_from_chunk_counts_are_the_whole_shops(history, chunks) -> None:
    counts = _sum([co_purchase_counts(c) for c in chunks])
    whole = co_purchase_counts(history)
    pd.testing.assert_frame_equal(counts.both, whole.both)
    pd.testing.assert_frame_equal(rules_from_counts(counts), rules_from_counts(whole))
    per_chunk = pd.concat([next_best(c, counts=counts) for c in chunks]).sort_values("customer_id")
    pd.testing.assert_frame_equal(per_chunk.reset_index(drop=True), next_best(history))


def test_discount_scores_from_chunk_evidence_are_the_whole_shops(history, chunks) -> None:
    scored = score_discount(pd.concat([discount_evidence(c) for c in chunks]))
    pd.testing.assert_frame_equal(scored, discount_sensitivity(history), check_exact=True)


def test_engagement_scores_do_not_depend_on_the_order_of_event_rows(history) -> None:
    # The bug: features kept the order rows came in, so LightGBM's sums (and the 8th digit of every
    # probability) followed the store's row order, and a chunked read differed from a whole one.
    events = history.frames.events.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled = History(dataclasses.replace(history.frames, events=events), history.cutoff)
    expected = score_engagement(history).scores.set_index("customer_id")
    got = score_engagement(shuffled).scores.set_index("customer_id")
    assert (
        expected["model_kind"].iloc[0].startswith("lightgbm") or "lightgbm" in expected["model_kind"].iloc[0]
    )
    pd.testing.assert_frame_equal(got.loc[expected.index], expected, check_exact=True)
