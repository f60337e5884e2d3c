"""RFM quintile scores and the named RFM groups: the score rule, the grid, and a realistic shop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.features import build_features
from engine.frames import FrameError, history_at
from engine.segments import OUTPUT_COLUMNS, SEGMENT_GRID, SEGMENT_NAMES, quintile_score, rfm_segments
from simulators.shops import generate_with_truth
from tests.support.shop_frames import shop_frames


@pytest.fixture(scope="module")
def shop() -> tuple[pd.DataFrame, pd.DataFrame]:
    data, truth = generate_with_truth("small", seed=3)
    features = build_features(history_at(shop_frames(data), truth.as_of))
    return features, truth.people.assign(person_id=truth.people["person_id"].astype(str))


def test_score_is_one_plus_fifths_of_strictly_worse_and_ties_share_it() -> None:
    values = pd.Series([1, 1, 1, 1, 1, 1, 2, 2, 3, 10], dtype=float)
    assert quintile_score(values).tolist() == [1] * 6 + [4, 4, 5, 5]
    recency = pd.Series([400.0, 3.0, 3.0, 60.0, np.nan])
    # Lower recency is better; a missing value counts as the worst.
    assert quintile_score(recency, higher_is_better=False).tolist() == [2, 4, 4, 3, 1]


def test_grid_names_every_cell_with_the_eleven_groups() -> None:
    cells = {name for row in SEGMENT_GRID for name in row}
    assert cells == set(SEGMENT_NAMES) and len(SEGMENT_NAMES) == 11
    assert [len(row) for row in SEGMENT_GRID] == [5] * 5
    corners = {(5, 5): "Champions", (1, 1): "Lost", (1, 5): "Can't Lose Them", (5, 1): "New Customers"}
    for (r, fm), name in corners.items():
        assert SEGMENT_GRID[r - 1][fm - 1] == name


def test_hand_made_buyers_land_where_the_table_says() -> None:
    features = pd.DataFrame(
        {
            "recency_days": [2, 3, 300, 310, 4, 320] + [150] * 4,
            "n_orders": [12, 1, 11, 1, 1, 1] + [2] * 4,
            "monetary_total": [900, 20, 950, 15, 25, 18] + [100] * 4,
        },
        index=pd.Index([f"c{i}" for i in range(10)], name="customer_id"),
    )
    out = rfm_segments(features).set_index("customer_id")
    assert out.loc["c0", "rfm_segment"] == "Champions"
    assert out.loc["c2", "rfm_segment"] == "Can't Lose Them"
    assert out.loc["c5", "rfm_segment"] == "Lost"
    assert (
        out.loc["c1", "rfm_score"]
        == f"{out.loc['c1', 'rfm_r']}{out.loc['c1', 'rfm_f']}{out.loc['c1', 'rfm_m']}"
    )
    assert out.loc[["c6", "c7", "c8", "c9"], "rfm_segment"].nunique() == 1  # identical buyers, one group


def test_synthetic_shop_uses_all_groups_and_they_mean_what_they_say(shop) -> None:
    features, people = shop
    out = rfm_segments(features)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == len(features) and out["customer_id"].is_unique
    assert set(out["rfm_segment"]) == set(SEGMENT_NAMES)
    for column in ("rfm_r", "rfm_f", "rfm_m"):
        assert out[column].between(1, 5).all()
    joined = out.merge(people, left_on="customer_id", right_on="person_id")
    future = joined.groupby("rfm_segment")["future_orders_365"].mean()
    # Champions really do buy more in the following year than the Lost and the Hibernating.
    assert future["Champions"] > 3 * future["Lost"]
    assert future["Champions"] > future["Hibernating"]
    assert future["Loyal Customers"] > future["About To Sleep"]


def test_row_order_does_not_change_anyones_segment(shop) -> None:
    features, _ = shop
    a = rfm_segments(features).set_index("customer_id")
    b = rfm_segments(features.sample(frac=1.0, random_state=4)).set_index("customer_id")
    pd.testing.assert_frame_equal(a, b.loc[a.index])


def test_missing_column_names_the_frame_and_column() -> None:
    with pytest.raises(
        FrameError, match=r"features frame: missing required column\(s\) \['monetary_total'\]"
    ):
        rfm_segments(pd.DataFrame({"recency_days": [1.0], "n_orders": [1.0]}))
