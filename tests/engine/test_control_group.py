"""Control group: stable hashed membership; uplift with Newcombe's interval and a z-test p-value."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency

from engine.control_group import (
    UPLIFT_COLUMNS,
    control_assignment,
    conversions,
    hash_unit,
    newcombe_interval,
    uplift,
)

IDS = [f"cust-{i}" for i in range(20_000)]


def test_membership_is_a_pure_function_of_id_and_salt() -> None:
    a = control_assignment(IDS, 0.1, "spring-2025")
    b = control_assignment(list(reversed(IDS)), 0.1, "spring-2025").set_index("customer_id")
    assert a.set_index("customer_id")["control_group"].equals(b.loc[a["customer_id"], "control_group"])
    assert 0.09 < a["control_group"].mean() < 0.11
    # Pinned to sha256 (not Python's salted hash): recompute one member by hand.
    digest = hashlib.sha256(b"spring-2025\x1fcust-0").digest()[:8]
    assert a.loc[0, "control_group"] == (int.from_bytes(digest, "big") / 2**64 < 0.1)


def test_raising_the_share_only_adds_members_and_a_new_salt_draws_a_new_group() -> None:
    small = control_assignment(IDS, 0.05, "s")["control_group"].to_numpy()
    large = control_assignment(IDS, 0.10, "s")["control_group"].to_numpy()
    assert (large[small]).all() and large.sum() > small.sum()
    other = control_assignment(IDS, 0.10, "t")["control_group"].to_numpy()
    overlap = (large & other).sum() / large.sum()
    assert 0.05 < overlap < 0.16  # independent draws overlap by about the share itself
    assert ((hash_unit(IDS, "s") >= 0) & (hash_unit(IDS, "s") < 1)).all()


@pytest.mark.parametrize(("share", "salt"), [(-0.1, "s"), (1.5, "s"), (0.1, "")])
def test_bad_settings_are_refused(share: float, salt: str) -> None:
    with pytest.raises(ValueError, match=r"share|salt"):
        control_assignment(IDS[:3], share, salt)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ],
)
def test_newcombe_interval_matches_the_published_examples(counts, expected) -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
    low, high = newcombe_interval(*counts, confidence=0.95)
    assert (round(low, 4), round(high, 4)) == expected


def _outcomes(rate_treated: float, rate_control: float, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = control_assignment([f"c{i}" for i in range(n)], 0.2, f"salt{seed}")
    rate = np.where(frame["control_group"], rate_control, rate_treated)
    return frame.assign(converted=rng.random(n) < rate)


def test_uplift_report_finds_a_real_effect_and_its_p_value_is_the_chi_square_one() -> None:
    outcomes = _outcomes(0.06, 0.04, 20_000, seed=1)
    row = uplift(outcomes).iloc[0]
    assert list(uplift(outcomes).columns) == list(UPLIFT_COLUMNS)
    assert row["n_treated"] + row["n_control"] == 20_000
    assert row["uplift"] == pytest.approx(row["rate_treated"] - row["rate_control"])
    assert row["ci_low"] > 0 and row["ci_low"] < 0.02 < row["ci_high"]
    table = [
        [row["converted_treated"], row["n_treated"] - row["converted_treated"]],
        [row["converted_control"], row["n_control"] - row["converted_control"]],
    ]
    assert row["p_value"] == pytest.approx(chi2_contingency(table, correction=False).pvalue, rel=1e-9)
    assert row["p_value"] < 0.01


def test_interval_covers_a_null_effect_about_95_percent_of_the_time() -> None:
    covered = [uplift(_outcomes(0.05, 0.05, 2_000, seed=s)).iloc[0] for s in range(200)]
    coverage = np.mean([r["ci_low"] <= 0 <= r["ci_high"] for r in covered])
    false_positives = np.mean([r["p_value"] < 0.05 for r in covered])
    assert 0.91 <= coverage <= 0.99 and false_positives <= 0.09


def test_uplift_by_segment_and_conversions_from_orders() -> None:
    start, end = pd.Timestamp("2025-05-01", tz="UTC"), pd.Timestamp("2025-06-01", tz="UTC")
    assignment = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "control_group": [False, True, False, True]}
    )
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "ordered_at": [start, start - pd.Timedelta(days=1), end - pd.Timedelta(seconds=1), end],
        }
    )
    outcomes = conversions(assignment, orders, start, end).assign(segment=["x", "x", "y", "y"])
    assert outcomes["converted"].tolist() == [True, False, True, False]
    table = uplift(outcomes, by="segment").set_index("segment")
    assert table.loc["x", ["n_treated", "n_control", "uplift"]].tolist() == [1.0, 1.0, 1.0]
    empty = uplift(outcomes[outcomes["control_group"]]).iloc[0]
    assert empty["n_treated"] == 0 and np.isnan(empty["uplift"]) and np.isnan(empty["p_value"])
