"""Public names for the backtest report's SVG chart geometry, so other pages draw the same charts.

The report (engine/report.py) owns the drawing; this module only re-exports its square plot size,
padding, palette and polyline mapping under public names, plus the one helper the report draws inline
in its template: bar lengths for a bar chart. Callers give plain sequences of numbers in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.report import COLORS, PAD, SIZE, Series, _polyline

__all__ = ["COLORS", "PAD", "SIZE", "Series", "bar_lengths", "polyline"]


def polyline(x: Sequence[float], y: Sequence[float]) -> str:
    """SVG `points` for a curve on the report's unit square (x right, y up), like its calibration plot."""
    return _polyline(np.asarray(x, dtype=float), np.asarray(y, dtype=float))


def bar_lengths(values: Sequence[float], full: float) -> list[float]:
    """Bar lengths scaled so the largest value spans `full` pixels (the report's importance chart rule)."""
    array = np.asarray(values, dtype=float)
    top = float(array.max()) if len(array) else 0.0
    if top <= 0:
        return [0.0] * len(array)
    return [round(float(v) / top * full, 1) for v in array]
