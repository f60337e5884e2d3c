"""The score stage: frames from the store, the engine's scores, the scores table.

Scores are computed as of the start of the current UTC day, from everything the store holds. They
are recomputed only when that input changes: a fingerprint of the frames, the day and the engine
settings names the score version, and a cycle whose fingerprint already has scores in the store
reuses them. An unchanged shop therefore yields identical values, and the push ledger writes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from engine.frames import ShopFrames, history_at
from engine.models import TrainingConfig
from engine.scoring import score_customers
from sync import tables
from sync.config import EngineConfig
from sync.fields import OUTPUTS
from sync.frames import load_frames
from sync.store import session_scope, upsert

log = logging.getLogger("espd.scoring")
PURCHASE_HORIZON_DAYS = 30
TEXT_OUTPUTS = frozenset(f.output for f in OUTPUTS if f.type.value in ("text", "category", "date"))


@dataclass
class ScoreReport:
    version: str
    scored: int = 0
    reused: bool = False
    model_kind: str = ""
    messages: list[str] = field(default_factory=list)
    scores: dict[int, dict[str, Any]] = field(default_factory=dict)


def _fingerprint(frames: ShopFrames, cutoff: pd.Timestamp, settings: EngineConfig) -> str:
    digest = hashlib.sha256()
    for frame in (frames.orders, frames.lines, frames.events, frames.customers):
        ordered = frame.sort_values(list(frame.columns)).reset_index(drop=True) if len(frame) else frame
        digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    digest.update(cutoff.isoformat().encode())
    digest.update(settings.model_dump_json().encode())
    return digest.hexdigest()[:16]


def _stored(engine: Engine, version: str) -> dict[int, dict[str, Any]]:
    with Session(engine) as session:
        rows = session.execute(select(tables.Score).where(tables.Score.model_version == version)).scalars()
        scores: dict[int, dict[str, Any]] = {}
        for row in rows:
            value = row.value_text if row.output in TEXT_OUTPUTS else row.value_num
            scores.setdefault(row.profile_id, {"model_kind": row.model_kind})[row.output] = value
        return scores


def _persist(engine: Engine, version: str, frame: pd.DataFrame, now: datetime) -> None:
    outputs = [f.output for f in OUTPUTS if f.output in frame.columns]
    rows = []
    for record in frame.to_dict("records"):
        for output in outputs:
            value = record[output]
            text = output in TEXT_OUTPUTS
            rows.append(
                {
                    "profile_id": int(record["customer_id"]),
                    "output": output,
                    "model_version": version,
                    "value_num": None if text or pd.isna(value) else float(value),
                    "value_text": str(value) if text and not pd.isna(value) else None,
                    "model_kind": str(record.get(f"model_kind_{_model_of(output)}", record["model_kind"])),
                    "reasons": list(record.get("reasons_churn") or [])
                    if output.startswith("churn")
                    else None,
                    "scored_at": now,
                }
            )
    with session_scope(engine) as session:
        session.execute(delete(tables.Score).where(tables.Score.model_version != version))
        upsert(session, tables.Score, rows)


def _model_of(output: str) -> str:
    if output.startswith("churn"):
        return "churn"
    if output in ("expected_orders",):
        return "orders"
    if output.startswith("clv") or output == "expected_spend":
        return "spend"
    return "purchase"


def score_store(
    engine: Engine, source_types: Mapping[str, str], settings: EngineConfig, now: datetime | None = None
) -> ScoreReport:
    """Scores for every customer with orders; reuses the stored ones when nothing changed."""
    now = now or datetime.now(UTC)
    cutoff = pd.Timestamp(now).tz_convert("UTC").floor("D")
    frames, validation = load_frames(engine, source_types)
    version = _fingerprint(frames, cutoff, settings)
    report = ScoreReport(version)
    if validation.dropped:
        report.messages.append(f"rows dropped before scoring: {validation.summary()}")
    stored = _stored(engine, version)
    if stored:
        report.reused, report.scores, report.scored = True, stored, len(stored)
        return report
    history = history_at(frames, cutoff)
    if history.orders.empty:
        report.messages.append("no orders yet: every customer gets the fields' unknown values")
        return report
    result = score_customers(
        history,
        horizon_days=PURCHASE_HORIZON_DAYS,
        churn_horizon_days=settings.horizon_days,
        config=TrainingConfig(min_buyers=settings.min_buyers),
    )
    report.messages.extend(result.messages)
    _persist(engine, version, result.scores, now)
    report.scores = _stored(engine, version)
    report.scored = len(report.scores)
    report.model_kind = str(result.scores["model_kind"].iloc[0]) if len(result.scores) else ""
    return report
