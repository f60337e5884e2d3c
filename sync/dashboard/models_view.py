"""The Models page's figures, from what the store holds: the models table and the scores table.

A `models` row is read as the engine's registry metadata (engine.registry.model_metadata) in
`metrics`: `holdout` = {"lightgbm": {...}, "baseline": {...}}, `reason`, and optionally the holdout
curves `calibration` = {"mean_p": [...], "rate": [...]}, `gains` = {"customers": [...], "captured":
[...]} and `importance` = {feature: share of gain}. Whatever is absent is named as missing on the page
instead of being invented. The scores table always says which model kind scored each output.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from engine import charts
from sync import tables
from sync.dashboard.svg import Bar, bar_rows

IMPORTANCE_SHOWN = 12


@dataclass(frozen=True)
class ScoredOutput:
    output: str
    customers: int
    kinds: dict[str, int]
    version: str
    scored_at: datetime | None


@dataclass
class ModelCard:
    output: str
    version: str
    kind: str
    promoted: bool
    train_from: datetime | None
    train_to: datetime | None
    created_at: datetime | None
    retrain_due: datetime | None
    reason: str
    metric_names: list[str] = field(default_factory=list)
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    calibration: list[charts.Series] = field(default_factory=list)
    gains: list[charts.Series] = field(default_factory=list)
    importance: list[Bar] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def scored_outputs(engine: Engine, outputs: Collection[str]) -> list[ScoredOutput]:
    """Per field output (bookkeeping rows such as input digests left out): who scored how many."""
    with Session(engine) as session:
        rows = session.execute(
            select(
                tables.Score.output,
                tables.Score.model_kind,
                tables.Score.model_version,
                func.count(),
                func.max(tables.Score.scored_at),
            )
            .where(tables.Score.output.in_(list(outputs)))
            .group_by(tables.Score.output, tables.Score.model_kind, tables.Score.model_version)
        ).all()
    by_output: dict[str, list[Any]] = {}
    for output, kind, version, count, stamp in rows:
        by_output.setdefault(output, []).append((kind, version, int(count), stamp))
    result = []
    for output, parts in sorted(by_output.items()):
        kinds = Counter({kind: 0 for kind, *_ in parts})
        for kind, _, count, _ in parts:
            kinds[kind] += count
        latest = max(parts, key=lambda p: (p[3] is not None, p[3] or 0))
        result.append(ScoredOutput(output, sum(kinds.values()), dict(kinds), latest[1], latest[3]))
    return result


def _curve(points: Any, x: str, y: str, name: str) -> list[charts.Series]:
    if not isinstance(points, dict) or x not in points or y not in points:
        return []
    diagonal = charts.Series(
        "perfect" if x == "mean_p" else "random", charts.polyline([0, 1], [0, 1]), charts.COLORS["random"]
    )
    return [diagonal, charts.Series(name, charts.polyline(points[x], points[y]), charts.COLORS["espd"])]


def _importance(shares: Any) -> list[Bar]:
    if not isinstance(shares, dict) or not shares:
        return []
    top = sorted(((str(k), float(v)) for k, v in shares.items()), key=lambda kv: -kv[1])[:IMPORTANCE_SHOWN]
    return bar_rows([n for n, _ in top], [s for _, s in top], [f"{s:.1%}" for _, s in top])


def model_card(row: tables.Model, retrain_every_days: int) -> ModelCard:
    metrics = row.metrics or {}
    holdout = {k: v for k, v in (metrics.get("holdout") or {}).items() if isinstance(v, dict)}
    names = sorted({n for values in holdout.values() for n in values})
    card = ModelCard(
        output=row.output,
        version=row.version,
        kind=row.kind,
        promoted=row.promoted,
        train_from=row.train_from,
        train_to=row.train_to,
        created_at=row.created_at,
        retrain_due=row.created_at + timedelta(days=retrain_every_days) if row.created_at else None,
        reason=str(metrics.get("reason") or ""),
        metric_names=names,
        holdout=holdout,
        calibration=_curve(metrics.get("calibration"), "mean_p", "rate", row.kind),
        gains=_curve(metrics.get("gains"), "customers", "captured", row.kind),
        importance=_importance(metrics.get("importance")),
    )
    wanted = {
        "training window": row.train_from and row.train_to,
        "holdout metrics": holdout,
        "calibration curve": card.calibration,
        "gains curve": card.gains,
        "feature importance": card.importance,
    }
    card.missing = [name for name, present in wanted.items() if not present]
    return card


def model_cards(engine: Engine, retrain_every_days: int) -> list[ModelCard]:
    """The promoted model of each output (or its newest one when none is promoted).

    Rows without holdout metrics (the micro-segment centroids kept for matching ids) are not models
    a person judges, so they get no card.
    """
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Model).order_by(
                tables.Model.output, tables.Model.promoted.desc(), tables.Model.created_at.desc()
            )
        ).scalars()
        chosen: dict[str, tables.Model] = {}
        for row in rows:
            chosen.setdefault(row.output, row)
    return [
        model_card(row, retrain_every_days) for row in chosen.values() if (row.metrics or {}).get("holdout")
    ]
