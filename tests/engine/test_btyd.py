"""BG/NBD and Gamma-Gamma: the fits recover known parameters and the predictions agree with each other."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.baseline import fit_baseline
from engine.btyd import BTYDFitError, btyd_summary, fit_bgnbd
from engine.frames import history_at, make_frames
from tests.support.btyd_sim import START, simulate_orders

TRUE = (0.6, 40.0, 1.5, 6.0)


@pytest.fixture(scope="module")
def history():
    frames, _ = make_frames(simulate_orders(4000, seed=3, days=720, params=TRUE))
    return history_at(frames, START + pd.Timedelta(days=720))


def test_bgnbd_recovers_the_simulated_parameters(history) -> None:
    model = fit_bgnbd(btyd_summary(history))
    r, alpha, a, b = TRUE
    assert model.r == pytest.approx(r, rel=0.25)
    assert model.r / model.alpha == pytest.approx(r / alpha, rel=0.2)  # mean purchase rate per day
    assert model.a / (model.a + model.b) == pytest.approx(a / (a + b), rel=0.3)  # mean dropout


def test_predictions_are_consistent(history) -> None:
    base = fit_baseline(history)
    p30, p90 = base.p_purchase(30), base.p_purchase(90)
    assert np.all((p30 >= 0) & (p30 <= p90) & (p90 <= 1))
    assert np.all(base.expected_orders(90) >= base.expected_orders(30))
    # P(at least one) cannot exceed the expected count.
    assert np.all(p30 <= base.expected_orders(30) + 1e-9)
    assert np.all((base.p_alive() > 0) & (base.p_alive() <= 1))
    assert base.description == "BG/NBD + Gamma-Gamma"


def test_no_repeat_buyers_falls_back_to_a_rule() -> None:
    orders = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(30)],
            "order_id": [f"o{i}" for i in range(30)],
            "ordered_at": [START + pd.Timedelta(days=i) for i in range(30)],
            "amount": 10.0,
        }
    )
    frames, _ = make_frames(orders)
    history = history_at(frames, START + pd.Timedelta(days=60))
    with pytest.raises(BTYDFitError):
        fit_bgnbd(btyd_summary(history))
    base = fit_baseline(history)
    assert "pooled-rate rule" in base.description
    assert np.all((base.p_purchase(30) > 0) & (base.p_purchase(30) < 1))
