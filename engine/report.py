"""A self-contained HTML backtest report: metric tables and inline SVG charts (no scripts, no CDN).

People would rather look than read numbers: the page shows the calibration curve, the spend gains
chart and LightGBM's feature importance next to the tables. `write_report` is the one function in
the engine that writes a file, and only to the path it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from engine.backtest import BacktestResult
from engine.metrics import best_cells, calibration_curve, gains_curve

COLORS = {"espd": "#1f77b4", "bgnbd_gg": "#d62728", "rfm": "#2ca02c", "random": "#999999"}
SIZE, PAD = 320, 36


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # SVG polyline points
    color: str


def _polyline(x: np.ndarray, y: np.ndarray) -> str:
    span = SIZE - 2 * PAD
    return " ".join(
        f"{PAD + xi * span:.1f},{SIZE - PAD - yi * span:.1f}" for xi, yi in zip(x, y, strict=True)
    )


def _calibration_series(result: BacktestResult) -> list[Series]:
    y = result.actual["bought"].to_numpy()
    out = [Series("perfect", _polyline(np.array([0, 1]), np.array([0, 1])), COLORS["random"])]
    for name, pred in result.predictions.items():
        curve = calibration_curve(y, pred["p_purchase"].to_numpy())
        out.append(
            Series(name, _polyline(curve["mean_p"].to_numpy(), curve["rate"].to_numpy()), COLORS[name])
        )
    return out


def _gains_series(result: BacktestResult) -> list[Series]:
    spend = result.actual["spend"].to_numpy()
    out = [Series("random", _polyline(np.array([0, 1]), np.array([0, 1])), COLORS["random"])]
    for name, pred in result.predictions.items():
        curve = gains_curve(spend, pred["expected_spend"].to_numpy())
        out.append(
            Series(name, _polyline(curve["customers"].to_numpy(), curve["captured"].to_numpy()), COLORS[name])
        )
    return out


def _importance(result: BacktestResult, top: int = 15) -> list[tuple[str, float]]:
    model = result.scoring.models["purchase"]
    if model.booster is None:
        return []
    gain = pd.Series(
        model.booster.feature_importance(importance_type="gain"), index=model.booster.feature_name()
    )
    gain = (gain / max(gain.sum(), 1e-12)).sort_values(ascending=False).head(top)
    return [(name, float(share)) for name, share in gain.items()]


def _table(table: pd.DataFrame) -> list[dict[str, object]]:
    """Rows of formatted cells, each marked best when it wins its column."""
    best = best_cells(table)
    return [
        {
            "method": method,
            "cells": [
                {"value": f"{v:.4f}", "best": bool(b)} for v, b in zip(row, best.loc[method], strict=True)
            ],
        }
        for method, row in table.iterrows()
    ]


def render_report(result: BacktestResult, title: str) -> str:
    env = Environment(loader=PackageLoader("engine", "templates"), autoescape=select_autoescape(["html"]))
    return env.get_template("backtest.html").render(
        title=title,
        size=SIZE,
        pad=PAD,
        columns=list(result.table.columns),
        rows=_table(result.table),
        churn_columns=list(result.churn_table.columns),
        churn_rows=_table(result.churn_table) if not result.churn_table.empty else [],
        calibration=_calibration_series(result),
        gains=_gains_series(result),
        importance=_importance(result),
        messages=result.messages,
        n_customers=len(result.actual),
    )


def write_report(result: BacktestResult, path: Path, title: str = "espd backtest") -> Path:
    path.write_text(render_report(result, title), encoding="utf-8")
    return path
