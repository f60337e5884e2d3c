"""Acceptance on a public real dataset: CDNOW (shipped in the `lifetimes` wheel, a dev extra).

The call below is what `espd backtest --cutoff 1997-10-01 --horizon-days 90` runs: espd scored as of
1997-10-01 must beat BG/NBD + Gamma-Gamma over the next 90 days on ROC AUC, PR AUC, Brier and the
Poisson deviance of the order count.
"""

from __future__ import annotations

import pytest

from engine.backtest import backtest
from engine.frames import frames_from_order_rows
from tests.support.cdnow import cdnow_orders


@pytest.fixture(scope="module")
def result():
    frames, report = frames_from_order_rows(cdnow_orders())
    assert not report.dropped
    return backtest(frames, "1997-10-01", horizon_days=90, churn_horizon_days=90)


@pytest.mark.slow
def test_espd_beats_bgnbd_gamma_gamma_on_cdnow(result) -> None:
    espd, base = result.table.loc["espd"], result.table.loc["bgnbd_gg"]
    assert espd["roc_auc"] > base["roc_auc"]
    assert espd["pr_auc"] > base["pr_auc"]
    assert espd["brier"] < base["brier"]
    assert espd["poisson_deviance"] < base["poisson_deviance"]
    assert len(result.actual) == 23_570
    assert result.scoring.models["purchase"].kind == "lightgbm"
