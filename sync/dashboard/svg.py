"""Bar rows for the dashboard's bar charts, scaled with the backtest report's rule (engine.charts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine import charts

BAR_PIXELS = 260.0


@dataclass(frozen=True)
class Bar:
    label: str
    text: str  # the value written beside the bar
    length: float  # pixels


def bar_rows(labels: Sequence[str], values: Sequence[float], texts: Sequence[str]) -> list[Bar]:
    lengths = charts.bar_lengths(values, BAR_PIXELS)
    return [Bar(*row) for row in zip(labels, texts, lengths, strict=True)]
