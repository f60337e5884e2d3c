"""The engine's metrics vs baselines, as one JSON line: the synthetic shop and the public CDNOW panel.

    .venv/bin/python bench/quality.py [--seed 7] [--no-cdnow]

Reuses bench/engine_quality.py (the engine engineer's quality table): on the synthetic `small` shop,
espd's purchase and active probabilities against the oracle (the shop's true rates) and BG/NBD +
Gamma-Gamma; on CDNOW (tests/support/cdnow.py), `engine.backtest` at the 1997-10-01 cutoff.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import pandas as pd
from benchlib import emit
from engine_quality import synthetic

from engine.backtest import backtest
from engine.frames import frames_from_order_rows
from tests.support.cdnow import cdnow_orders

CDNOW_CUTOFF = "1997-10-01"


def records(table: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """A metrics table as {"row": {"metric": value}} with tuple row labels joined by '/'."""
    out: dict[str, dict[str, float | None]] = {}
    for label, row in table.iterrows():
        name = "/".join(map(str, label)) if isinstance(label, tuple) else str(label)
        out[name] = {
            str(k): (None if not isinstance(v, int | float) or math.isnan(v) else round(float(v), 4))
            for k, v in row.items()
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-cdnow", action="store_true")
    args = parser.parse_args()
    pd.set_option("display.width", 160)
    started = time.perf_counter()
    table = synthetic(args.seed, 30, 90)
    result: dict[str, Any] = {
        "synthetic_small": records(table),
        "synthetic_s": round(time.perf_counter() - started, 1),
    }
    summary = ["synthetic small shop (espd vs oracle vs BG/NBD+GG):", table.round(4).to_string()]
    if not args.no_cdnow:
        started = time.perf_counter()
        frames, _ = frames_from_order_rows(cdnow_orders())
        cdnow = backtest(frames, CDNOW_CUTOFF, 90, 90).table
        result.update(cdnow=records(cdnow), cdnow_s=round(time.perf_counter() - started, 1))
        summary += [f"CDNOW cutoff {CDNOW_CUTOFF}, 90 days:", cdnow.round(4).to_string()]
    command = f"bench/quality.py --seed {args.seed}" + (" --no-cdnow" if args.no_cdnow else "")
    emit("quality", {**result, "command": command}, summary)


if __name__ == "__main__":
    main()
