"""The Segments and fields page: segment sizes, each pushed field's distribution, coverage, uplift.

Everything comes from the store: the scores table (one row per customer and output, current
version only), the push ledger (what each destination confirmed) and the orders. Drift between runs
is not shown because the score stage keeps only the current version's scores; the page says so.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from connectors.base import FieldType
from engine.control_group import control_assignment, conversions, uplift
from sync import tables
from sync.config import Config
from sync.dashboard.svg import Bar, bar_rows
from sync.field_table import OutputField
from sync.fields import available_outputs, outputs_for, rule_pairs

HISTOGRAM_BINS = 10
NUMERIC = (FieldType.NUMBER, FieldType.INTEGER)


@dataclass(frozen=True)
class Distribution:
    name: str  # the pushed field's name, with the prefix
    output: str
    kind: str
    customers: int
    bars: list[Bar]
    mean: float | None


@dataclass(frozen=True)
class Coverage:
    destination: str
    held: int
    confirmed: int
    parked: int
    rejected_once: int
    fields_defined: int


@dataclass(frozen=True)
class Uplift:
    share: float
    since: datetime
    n_treated: int
    n_control: int
    rate_treated: float
    rate_control: float
    uplift: float
    ci_low: float
    ci_high: float
    p_value: float


def pushed_outputs(config: Config) -> list[OutputField]:
    """Every output some push-enabled connector receives, in the field table's order."""
    chosen: set[str] = set()
    for name, connector in config.connectors.items():
        if connector.push and connector.enabled:
            chosen.update(f.output for f in outputs_for(config, name))
    return [f for f in available_outputs(rule_pairs(config)) if f.output in chosen]


def _bars(labels: list[str], counts: list[int]) -> list[Bar]:
    return bar_rows(labels, counts, [f"{c:,}" for c in counts])


def _numeric_bars(values: np.ndarray) -> list[Bar]:
    if not len(values):
        return []
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS)
    labels = [f"{lo:,.3g} – {hi:,.3g}" for lo, hi in itertools.pairwise(edges)]
    return _bars(labels, [int(c) for c in counts])


def _category_bars(field: OutputField, values: list[str]) -> list[Bar]:
    if field.type is FieldType.DATE:
        values = [v[:7] for v in values]  # by month: a day-level chart of dates is unreadable
    counts = Counter(values)
    order = list(field.allowed) if field.allowed else sorted(counts)
    return _bars([str(v) for v in order], [counts.get(v, 0) for v in order])


def distributions(engine: Engine, prefix: str, fields: list[OutputField]) -> list[Distribution]:
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Score.output, tables.Score.value_num, tables.Score.value_text).where(
                tables.Score.output.in_([f.output for f in fields])
            )
        ).all()
    frame = pd.DataFrame(rows, columns=["output", "num", "text"])
    result = []
    for field in fields:
        mine = frame[frame["output"] == field.output]
        if field.type in NUMERIC:
            values = mine["num"].dropna().to_numpy(dtype=float)
            bars, mean = _numeric_bars(values), (float(values.mean()) if len(values) else None)
        else:
            values = mine["text"].dropna().astype(str).tolist()
            bars, mean = _category_bars(field, values), None
        result.append(
            Distribution(prefix + field.output, field.output, field.type.value, len(values), bars, mean)
        )
    return result


@dataclass(frozen=True)
class SegmentAudit:
    run_id: int
    created_at: datetime | None
    customers: int
    sizes: list[dict[str, Any]]  # segment_field, segment, size, previous_size, change_pct, status, ...
    stability: dict[str, float]  # segment field -> population stability index against the previous run


def latest_audit(engine: Engine) -> SegmentAudit | None:
    """The last run's segment audit (sizes, drift, stability), when the audit stage stored one."""
    with Session(engine) as session:
        row = session.execute(
            select(tables.SegmentAudit).order_by(tables.SegmentAudit.run_id.desc()).limit(1)
        ).scalar_one_or_none()
    if row is None:
        return None
    return SegmentAudit(
        row.run_id, row.created_at, row.customers, list(row.sizes or []), dict(row.stability or {})
    )


def coverage(engine: Engine, config: Config) -> list[Coverage]:
    ledger = tables.PushLedger
    with Session(engine) as session:
        held = dict(
            session.execute(
                select(tables.Identity.source, func.count())
                .where(tables.Identity.profile_id.is_not(None))
                .group_by(tables.Identity.source)
            ).all()
        )
        confirmed = dict(
            session.execute(
                select(ledger.destination, func.count())
                .where(ledger.confirmed_at.is_not(None), ledger.fingerprint.is_not(None))
                .group_by(ledger.destination)
            ).all()
        )
        parked = dict(
            session.execute(
                select(ledger.destination, func.count()).where(ledger.parked).group_by(ledger.destination)
            ).all()
        )
        rejected = dict(
            session.execute(
                select(ledger.destination, func.count())
                .where(ledger.rejected_runs > 0)
                .group_by(ledger.destination)
            ).all()
        )
        defined = dict(
            session.execute(
                select(tables.FieldDefinition.destination, func.count()).group_by(
                    tables.FieldDefinition.destination
                )
            ).all()
        )
    return [
        Coverage(
            name,
            int(held.get(name, 0)),
            int(confirmed.get(name, 0)),
            int(parked.get(name, 0)),
            int(rejected.get(name, 0)),
            int(defined.get(name, 0)),
        )
        for name, connector in config.connectors.items()
        if connector.push
    ]


def control_uplift(engine: Engine, config: Config, now: datetime | None = None) -> Uplift | None:
    """Conversion of treated vs control customers since fields were first pushed; None if not enabled."""
    share = config.segments.control_group.share
    if share <= 0:
        return None
    with Session(engine) as session:
        since = session.execute(select(func.min(tables.PushLedger.confirmed_at))).scalar_one()
        customers = session.execute(select(tables.Score.profile_id).distinct()).scalars().all()
        orders = session.execute(
            select(tables.Order.profile_id, tables.Order.ordered_at).where(
                tables.Order.profile_id.is_not(None)
            )
        ).all()
    if since is None or not customers:
        return None
    assignment = control_assignment([str(c) for c in customers], share, config.segments.control_group.salt)
    frame = pd.DataFrame(
        {
            "customer_id": [str(p) for p, _ in orders],
            "ordered_at": pd.to_datetime([t for _, t in orders], utc=True),
        }
    )
    end = pd.Timestamp(now or datetime.now(UTC))
    row = uplift(conversions(assignment, frame, pd.Timestamp(since), end)).iloc[0]
    return Uplift(
        share,
        since,
        int(row["n_treated"]),
        int(row["n_control"]),
        *(float(row[c]) for c in ("rate_treated", "rate_control", "uplift", "ci_low", "ci_high", "p_value")),
    )
