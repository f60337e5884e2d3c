"""Micro-segments: k by silhouette, readable names that mean something, ids stable across retrains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.features import build_features
from engine.frames import history_at
from engine.microsegments import OUTPUT_COLUMNS, MicroSegmentConfig, micro_segments
from simulators.shops import generate_with_truth
from tests.support.shop_frames import shop_frames


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    data, truth = generate_with_truth("small", seed=3)
    features = build_features(history_at(shop_frames(data), truth.as_of))
    return features, truth.people.assign(person_id=truth.people["person_id"].astype(str))


def _ids(result) -> pd.Series:
    return result.assignments.set_index("customer_id")["microsegment_id"]


def test_k_is_the_best_silhouette_and_names_say_what_distinguishes(shop) -> None:
    features, people = shop
    result = micro_segments(features, config=MicroSegmentConfig(k_range=(2, 6)))
    assert list(result.assignments.columns) == list(OUTPUT_COLUMNS)
    assert len(result.assignments) == len(features)
    assert set(result.silhouettes) == {2, 3, 4, 5, 6}
    assert result.k == max(result.silhouettes, key=result.silhouettes.get)
    assert sorted(result.summary["microsegment_id"]) == list(range(result.k))
    assert result.summary["microsegment_name"].is_unique
    assert result.summary["size"].sum() == len(features)
    # A segment named for discounts really is made of more discount-sensitive people (shop truth).
    truth = people.set_index("person_id")["discount_sensitivity"]
    named = result.assignments["microsegment_name"].str.contains(r"\bdiscount\b")
    assert named.any()
    sensitivity = truth.reindex(result.assignments["customer_id"]).to_numpy()
    assert sensitivity[named.to_numpy()].mean() > 1.5 * sensitivity[~named.to_numpy()].mean()
    frequent = result.assignments["microsegment_name"].str.contains("frequent")
    orders = features["n_orders"].reindex(result.assignments["customer_id"]).to_numpy()
    assert frequent.any() and orders[frequent.to_numpy()].mean() > 2 * orders[~frequent.to_numpy()].mean()


def test_cluster_ids_are_stable_across_two_retrains_on_the_same_data(shop) -> None:
    features, _ = shop
    first = micro_segments(features)
    # Renumber the first run's clusters so size order can no longer reproduce them by luck.
    renumber = {old: new for old, new in zip(first.centroids.index, [7, 3, 11, 5, 9, 2, 13, 4], strict=False)}
    previous = first.centroids.rename(index=renumber)
    expected = _ids(first).map(renumber)
    shuffled = features.sample(frac=1.0, random_state=9)
    second = micro_segments(shuffled, previous, MicroSegmentConfig(seed=17))
    third = micro_segments(features, second.centroids, MicroSegmentConfig(seed=23))
    for retrain in (second, third):
        assert retrain.k == first.k
        ids = _ids(retrain).reindex(expected.index)
        assert set(ids) == set(renumber.values())
        assert (ids == expected).mean() > 0.99
        pd.testing.assert_index_equal(retrain.centroids.index.sort_values(), previous.index.sort_values())


def test_ids_survive_slightly_changed_data_and_new_clusters_get_fresh_ids(shop) -> None:
    features, _ = shop
    first = micro_segments(features)
    rng = np.random.default_rng(1)
    changed = features.sample(frac=0.9, random_state=2).copy()
    changed["recency_days"] = changed["recency_days"] + rng.uniform(0, 10, len(changed))
    second = micro_segments(changed, first.centroids, MicroSegmentConfig(seed=4))
    kept = _ids(first).reindex(_ids(second).index)
    assert set(_ids(second)) == set(_ids(first))
    assert (kept == _ids(second)).mean() > 0.9
    # A previous run that knew only part of today's clusters: the rest are numbered above every old id.
    partial = first.centroids.iloc[:1].rename(index={first.centroids.index[0]: 40})
    third = micro_segments(features, partial, MicroSegmentConfig(k_range=(first.k, first.k)))
    assert 40 in set(_ids(third))
    assert sorted(set(_ids(third)) - {40}) == list(range(41, 40 + first.k))


def test_mismatched_previous_centroids_are_an_error_not_a_silent_renumbering(shop) -> None:
    features, _ = shop
    first = micro_segments(features.iloc[:500], config=MicroSegmentConfig(k_range=(3, 3)))
    with pytest.raises(ValueError, match="ids cannot be matched"):
        micro_segments(features.iloc[:500], first.centroids.drop(columns=["open_rate_90"]))


def test_too_few_distinct_buyers_still_answer() -> None:
    features = pd.DataFrame(
        {
            "n_orders": [1.0, 1.0, 1.0],
            "recency_days": [5.0, 5.0, 5.0],
            "monetary_mean": [20.0, 20.0, 20.0],
            "n_categories": [1.0, 1.0, np.nan],
            "discount_share": [0.0, 0.0, 0.0],
            "open_rate_90": [np.nan] * 3,
        },
        index=["a", "b", "c"],
    )
    result = micro_segments(features)
    assert result.k == 1 and set(_ids(result)) == {0}
    assert result.assignments["microsegment_name"].tolist() == ["typical buyers"] * 3
