"""The model registry in the store: one `models` row per trained model, the newest one promoted.

Training is the score stage's expensive step, and a model trained last week still ranks customers
well, so models are retrained on their own schedule (`schedule.retrain_every_days`) rather than every
time the data changes. Between retrains the promoted bundles are loaded and score the new data as
they are. They are retrained earlier when they cannot be trusted to fit the current setup: another
feature list, other engine settings or horizons, a bundle that no longer loads, or a shop that had
only a baseline (too few buyers or too little history: training that is free, and may now succeed).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlmodel import Session

from engine.features import FEATURE_COLUMNS
from engine.models import ModelSpec, TrainedModel
from engine.registry import BundleError, dump_model, load_model, model_metadata
from sync import tables
from sync.config import EngineConfig
from sync.store import session_scope

log = logging.getLogger("espd.models")
# Rows kept per output (the promoted one and its predecessors, for comparison); older ones are deleted.
ROWS_KEPT = 8


@dataclass(frozen=True)
class Reusable:
    """The promoted models when they can score this cycle, or why they cannot (`models` is None)."""

    models: dict[str, TrainedModel] | None
    trained_at: datetime | None
    why_not: str = ""


def settings_digest(settings: EngineConfig) -> str:
    """The engine settings a model's training depends on (not, e.g., where it runs)."""
    chosen = settings.model_dump_json(include={"horizon_days", "min_buyers", "sensitive_attributes"})
    return hashlib.sha256(chosen.encode()).hexdigest()[:16]


def _promoted_rows(engine: Engine, names: Sequence[str]) -> dict[str, tables.Model]:
    with Session(engine) as session:
        rows = session.execute(
            select(tables.Model)
            .where(tables.Model.output.in_(list(names)), tables.Model.promoted.is_(True))
            .order_by(tables.Model.created_at.desc())
        ).scalars()
        chosen: dict[str, tables.Model] = {}
        for row in rows:
            chosen.setdefault(row.output, row)
        return chosen


def _unusable(row: tables.Model, spec: ModelSpec, digest: str, due: datetime, now: datetime) -> str:
    """Why a stored row cannot score now, or "" when it can (loading is checked separately)."""
    if row.features != list(FEATURE_COLUMNS):
        return f"the {spec.name} model was trained on a different feature list"
    if (row.metrics or {}).get("settings") != digest:
        return "the engine settings changed since the models were trained"
    if now >= due:
        return f"the models trained on {row.created_at:%Y-%m-%d} were due for retraining on {due:%Y-%m-%d}"
    if not (row.metrics or {}).get("window"):
        return f"the {spec.name} model is a baseline fallback, which is retrained every scoring"
    return ""


def _load(row: tables.Model, spec: ModelSpec) -> tuple[TrainedModel | None, str]:
    try:
        model = load_model(row.artifact or b"")
    except BundleError as exc:
        log.warning("event=model_bundle_unusable output=%s version=%s error=%s", row.output, row.version, exc)
        return None, f"the stored {spec.name} model failed to load ({exc})"
    if model.spec != spec:
        return None, f"the {spec.name} model was trained for another horizon"
    return model, ""


def reusable_models(
    engine: Engine, specs: Sequence[ModelSpec], settings: EngineConfig, retrain_every_days: int, now: datetime
) -> Reusable:
    """The promoted model of every spec, if all are young enough and fit the current setup."""
    rows = _promoted_rows(engine, [s.name for s in specs])
    missing = [s.name for s in specs if s.name not in rows]
    if missing:
        return Reusable(None, None, f"no promoted model yet for {', '.join(missing)}")
    trained_at = min(rows[s.name].created_at or now for s in specs)
    due = trained_at + timedelta(days=retrain_every_days)
    digest, models = settings_digest(settings), {}
    for spec in specs:
        why = _unusable(rows[spec.name], spec, digest, due, now)
        model, why = (None, why) if why else _load(rows[spec.name], spec)
        if model is None:
            return Reusable(None, trained_at, why)
        models[spec.name] = model
    return Reusable(models, trained_at)


def _jsonable(value: Any) -> Any:
    """JSON the store accepts on both backends: PostgreSQL refuses NaN, so such metrics are left out."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if not _nan(v)}
    if isinstance(value, (list, tuple)):
        return [None if _nan(v) else _jsonable(v) for v in value]
    return value


def _nan(value: Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _day(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if text else None


def _row(name: str, model: TrainedModel, version: str, digest: str, now: datetime) -> tables.Model:
    window = model.window or (None, None)
    return tables.Model(
        output=name,
        version=version,
        kind=model.kind,
        artifact=dump_model(model),
        features=list(FEATURE_COLUMNS),
        metrics=_jsonable(model_metadata(model) | {"settings": digest}),
        train_from=_day(window[0]),
        train_to=_day(window[1]),
        promoted=True,
        created_at=now,
    )


def store_models(
    engine: Engine, models: Mapping[str, TrainedModel], version: str, settings: EngineConfig, now: datetime
) -> None:
    """Store freshly trained models as the promoted ones; their predecessors stay, un-promoted."""
    digest = settings_digest(settings)
    with session_scope(engine) as session:
        for name, model in models.items():
            session.execute(update(tables.Model).where(tables.Model.output == name).values(promoted=False))
            session.add(_row(name, model, version, digest, now))
            session.flush()
            stale = session.execute(
                select(tables.Model.id)
                .where(tables.Model.output == name)
                .order_by(tables.Model.created_at.desc(), tables.Model.id.desc())
                .offset(ROWS_KEPT)
            ).scalars()
            session.execute(delete(tables.Model).where(tables.Model.id.in_(list(stale))))
