"""The segment audit of every run: sizes, drift since the previous run, composition over sensitive attributes.

Seed 003's ethics points: a segment that suddenly empties is usually a data problem, and a segment
whose mix over country or gender differs sharply from the population is worth a human look before a
campaign targets it. The sensitive attributes are the ones the user lists in
`engine.sensitive_attributes`; they are read here (from profiles or the platforms' properties) and
never given to the engine's models (see `sync.frames.load_frames`). Each run stores its audit in
`segment_audits`, so drift is measured against the last audited run and `espd audit` can show any.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select
from sqlmodel import Session

from engine.segment_audit import composition, segment_sizes, size_drift, stability_index
from sync import tables
from sync.config import Config
from sync.field_table import RULE_PREFIX
from sync.frames import load_attributes
from sync.scoring import ScoreReport
from sync.store import session_scope

SEGMENT_FIELDS = (
    "lifecycle_stage",
    "rfm_segment",
    "microsegment",
    "churn_band",
    "clv_tier",
    "discount_band",
    "engagement_band",
    "control_group",
)


def segment_frame(scores: dict[int, dict[str, Any]], rule_names: list[str]) -> pd.DataFrame:
    """One row per scored customer (index customer_id as str), one column per segment field."""
    columns = [*SEGMENT_FIELDS, *(RULE_PREFIX + name for name in rule_names)]
    frame = pd.DataFrame.from_dict(scores, orient="index").reindex(columns=columns)
    frame.index = frame.index.astype(str)
    frame.index.name = "customer_id"
    for column in columns:
        if column == "control_group" or column.startswith(RULE_PREFIX):
            flags = pd.to_numeric(frame[column], errors="coerce")
            frame[column] = np.where(flags.isna(), None, np.where(flags > 0, "true", "false"))
    return frame


def audit_run(engine: Engine, run_id: int, score: ScoreReport, config: Config) -> tables.SegmentAudit | None:
    """Compute and store this run's audit; None when nothing was scored."""
    if not score.scores:
        return None
    frame = segment_frame(score.scores, [r.name for r in config.segments.rules])
    sensitive = list(config.engine.sensitive_attributes)
    if sensitive:
        frame = frame.join(load_attributes(engine, sensitive), how="left")
    columns = [c for c in frame.columns if c not in sensitive]
    drift = size_drift(segment_sizes(frame, columns), _previous_sizes(engine, run_id))
    mix = composition(frame, columns, sensitive) if sensitive else pd.DataFrame()
    audit = tables.SegmentAudit(
        run_id=run_id,
        created_at=datetime.now(UTC),
        customers=len(frame),
        sizes=_records(drift),
        stability={row.segment_field: float(row.psi) for row in stability_index(drift).itertuples()},
        composition=_records(mix),
    )
    with session_scope(engine) as session:
        session.merge(audit)
    return audit


def _previous_sizes(engine: Engine, run_id: int) -> pd.DataFrame | None:
    with Session(engine) as session:
        row = session.execute(
            select(tables.SegmentAudit)
            .where(tables.SegmentAudit.run_id < run_id)
            .order_by(tables.SegmentAudit.run_id.desc())
            .limit(1)
        ).scalar_one_or_none()
    if row is None or not row.sizes:
        return None
    previous = pd.DataFrame(row.sizes)
    previous = previous[previous["size"] > 0]  # segments already gone last time
    return previous[["segment_field", "segment", "size", "share"]]


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN becomes None."""
    if frame.empty:
        return []
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


def load_audit(engine: Engine, run_id: int | None = None) -> tables.SegmentAudit | None:
    """The audit of `run_id`, or the latest one."""
    with Session(engine) as session:
        statement = select(tables.SegmentAudit)
        if run_id is not None:
            statement = statement.where(tables.SegmentAudit.run_id == run_id)
        statement = statement.order_by(tables.SegmentAudit.run_id.desc()).limit(1)
        return session.execute(statement).scalar_one_or_none()
