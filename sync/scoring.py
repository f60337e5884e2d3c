"""The score stage: frames from the store, the engine's scores and segments, the scores table.

Scores are computed as of the start of the current UTC day, from everything the store holds. They
are recomputed only when that input changes: a fingerprint of the frames, the day, the engine
settings and the segment settings names the score version, and a cycle whose fingerprint already has
scores in the store reuses them. An unchanged shop therefore yields identical values, and the push
ledger writes nothing. When the input does change within the same day, the shop is re-scored but
only the customers whose own input rows changed take the new values (see `_carry_over`); everyone
is refreshed with the first scoring of each new day. The models themselves are kept in the models
table and retrained on their own schedule (see sync.model_store): between retrains the promoted ones
score the new data. Micro-segment centroids are kept there too, so the next clustering can match its
clusters to them and keep their ids.

The store is read one customer chunk at a time (`sync.frames.StoreChunks`, `engine.chunk_customers`
buyers each), so the history is never in memory at once: pass one digests every chunk (the
fingerprint and each customer's input digest) and gathers the shop-wide inputs of the scores and
segments (`engine.scoring.gather_chunks`, `sync.segments_stage.SegmentStage`); pass two scores each
chunk. What is held for the whole shop is per customer: the core scores, the segment outputs and the
few feature columns RFM and micro-segments read. The scores table is then written chunk by chunk, in
one transaction.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, delete, select
from sqlmodel import Session

from engine.chunks import ChunkSource, chunks_for_buyers
from engine.frames import ShopFrames
from engine.models import TrainingConfig
from engine.rules import compile_rule
from engine.scoring import ChunkedScoringResult, GatheredShop, gather_chunks, model_specs, score_gathered
from sync import tables
from sync.config import EngineConfig, ScheduleConfig, SegmentsConfig
from sync.engine_backend import engine_backend
from sync.fields import NUMERIC_TYPES, OUTPUTS, PROFILE_ATTRIBUTES, available_outputs, rule_field_kinds
from sync.frames import StoreChunks, chunk_condition, chunk_members, chunks_for_store, load_attributes
from sync.model_store import Reusable, reusable_models, store_models
from sync.segments_stage import KIND_PREFIX, SegmentInputs, SegmentStage
from sync.store import session_scope, upsert

log = logging.getLogger("espd.scoring")
PURCHASE_HORIZON_DAYS = 30
CENTROIDS_OUTPUT = "microsegments"
# Outputs of engine.scoring.score_customers: their kinds and reasons come from its per-model columns.
# Outputs stored in value_text (the others, booleans included, in value_num).
TEXT_OUTPUTS = frozenset(f.output for f in OUTPUTS if f.type not in NUMERIC_TYPES)
DIGEST_OUTPUT = "input_digest"
# Customers whose long rows (one per output) are built and written at a time: 20,000 made the rows'
# records (about 440k dicts) the peak of a 20k-person daily run (+87 MB, bench/score_store.py).
PERSIST_CHUNK_CUSTOMERS = 5_000
KIND_MAX_CHARS = 32  # scores.model_kind
_SCORE_COLUMNS = (
    "profile_id",
    "output",
    "model_version",
    "value_num",
    "value_text",
    "model_kind",
    "reasons",
    "scored_at",
)
# Outputs that share another output's model, and the method of outputs without a per-row kind.
_KIND_OF = {
    "discount_band": "discount_score",
    "engagement_band": "p_open_30d",
    "replenishment_category": "replenishment_date",
    "microsegment_id": "microsegment",
    "rfm_score": "rfm_segment",
}
_METHOD = {
    "lifecycle_stage": "shop_purchase_cycle",
    "rfm_segment": "rfm_quintiles",
    "microsegment": "kmeans",
    DIGEST_OUTPUT: "digest",
}
_CORE = frozenset(
    ("churn_risk", "churn_band", "p_purchase", "expected_orders", "clv_365", "clv_tier", "next_order_date")
)


@dataclass
class ScoreReport:
    version: str
    scored: int = 0
    reused: bool = False
    model_kind: str = ""
    # The models trained by this stage (empty when the promoted ones scored, or scores were reused).
    trained: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    scores: dict[int, dict[str, Any]] = field(default_factory=dict)


def _basis(cutoff: pd.Timestamp, settings: EngineConfig, segments: SegmentsConfig) -> str:
    """Everything besides the data that the values depend on: the cutoff day and the settings."""
    digest = hashlib.sha256(cutoff.isoformat().encode())
    digest.update(settings.model_dump_json().encode())
    digest.update(segments.model_dump_json().encode())
    return digest.hexdigest()[:16]


FrameDigest = tuple[tuple[str, ...], int, int]  # columns, rows, wrapping sum of the row hashes


def _frame_digest(frame: pd.DataFrame) -> FrameDigest:
    hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype="uint64")
    return tuple(frame.columns), len(frame), int(hashes.sum(dtype="uint64"))


def _combined(a: FrameDigest, b: FrameDigest) -> FrameDigest:
    """Two disjoint sets of rows' digest: rows and hash sums add (modulo 2**64, as the sum wraps)."""
    return a[0] or b[0], a[1] + b[1], (a[2] + b[2]) % 2**64


def _fingerprint(digests: list[FrameDigest], basis: str) -> str:
    """A digest of every input row, whatever order the store returned them in, and however the shop
    was cut in chunks.

    Per frame: its columns, its row count and the wrapping sum of its row hashes (order-independent,
    like `_input_digests`); sorting the frames first cost seconds per cycle on a small shop.
    """
    digest = hashlib.sha256(basis.encode())
    for columns, rows, total in digests:
        digest.update(f"{list(columns)}:{rows}:{total};".encode())
    return digest.hexdigest()[:16]


@dataclass
class _DigestedChunks:
    """The store's chunks (a `ChunkSource`), each digested on its first read: per frame its
    `FrameDigest`, summed over chunks into the shop's fingerprint, and per customer the input digest
    (a customer's rows are all in one chunk, so it is the one a whole-history read gives)."""

    store: StoreChunks
    attributes: pd.DataFrame
    basis: str
    _frames: list[FrameDigest] = field(default_factory=list)
    _customers: list[pd.Series] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)

    @property
    def n_chunks(self) -> int:
        return self.store.n_chunks

    def chunk(self, index: int) -> ShopFrames:
        frames = self.store.chunk(index)
        if index not in self._seen:
            self._seen.add(index)
            parts = [_frame_digest(f) for f in (frames.orders, frames.lines, frames.events, frames.customers)]
            previous = self._frames or [((), 0, 0)] * len(parts)
            self._frames = [_combined(a, b) for a, b in zip(previous, parts, strict=True)]
            ids = self.attributes.index.to_series()
            mine = self.attributes[chunk_members(ids, index, self.n_chunks)]
            self._customers.append(_input_digests(frames, mine, self.basis))
        return frames

    def fingerprint(self) -> str:
        if len(self._seen) != self.n_chunks:
            raise ValueError(f"fingerprint: read {len(self._seen)} of {self.n_chunks} chunks")
        return _fingerprint(self._frames, self.basis)

    def input_digests(self) -> pd.Series:
        return pd.concat(self._customers)


def _version_on_basis(engine: Engine, basis: str) -> str | None:
    """The stored scores' version if they were computed on `basis` (their input digests start with it)."""
    columns = tables.Score.__table__.c  # type: ignore[attr-defined]
    statement = (
        select(columns.model_version)
        .where(columns.output == DIGEST_OUTPUT, columns.value_text.startswith(basis + ":", autoescape=True))
        .limit(1)
    )
    with engine.connect() as connection:
        return connection.execute(statement).scalar_one_or_none()


def _numeric_outputs(segments: SegmentsConfig) -> frozenset[str]:
    rules = [(r.name, r.when) for r in segments.rules]
    return frozenset(f.output for f in available_outputs(rules) if f.type in NUMERIC_TYPES)


def _stored(engine: Engine, version: str, numeric: frozenset[str]) -> dict[int, dict[str, Any]]:
    """The stored scores of `version` by customer (Core rows: ORM objects cost 20 s per 100k scores)."""
    columns = tables.Score.__table__.c  # type: ignore[attr-defined]
    statement = select(
        columns.profile_id, columns.output, columns.value_num, columns.value_text, columns.model_kind
    ).where(columns.model_version == version)
    scores: dict[int, dict[str, Any]] = {}
    with engine.connect() as connection:
        for profile_id, output, value_num, value_text, kind in connection.execute(statement):
            value = value_num if output in numeric else value_text
            scores.setdefault(profile_id, {"model_kind": kind})[output] = value
    return scores


def _long_rows(
    frame: pd.DataFrame, outputs: list[str], numeric: frozenset[str], version: str, now: datetime
) -> pd.DataFrame:
    """One scores-table row per customer and output with a value (missing ones read back as unknown)."""
    parts = []
    for output in outputs:
        values = frame[output]
        present = values.notna().to_numpy()
        if not present.any():
            continue
        part = pd.DataFrame(
            {
                "profile_id": frame["customer_id"].astype("int64").to_numpy()[present],
                "output": output,
                "model_version": version,
                "value_num": pd.to_numeric(values, errors="coerce")[present].to_numpy(dtype=float)
                if output in numeric
                else None,
                "value_text": values[present].astype(str).to_numpy() if output not in numeric else None,
                "model_kind": _kinds(frame, output)[present],
                "reasons": _reasons(frame, output)[present],
                "scored_at": now,
            }
        )
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_SCORE_COLUMNS)


def _input_digests(frames: ShopFrames, attributes: pd.DataFrame, basis: str) -> pd.Series:
    """Per customer, a digest of every input row that is theirs (order-independent), prefixed by `basis`.

    `basis` names the cutoff day and the settings: a digest only matches across runs of the same day.
    """
    sums = []
    for frame in (frames.orders, frames.lines, frames.events, frames.customers, attributes.reset_index()):
        if len(frame):
            hashes = pd.util.hash_pandas_object(frame, index=False).astype("uint64")
            sums.append(hashes.groupby(frame["customer_id"].astype(str).to_numpy()).sum())
    total = (
        pd.concat(sums, axis=1).fillna(0).astype("uint64").sum(axis=1) if sums else pd.Series(dtype="uint64")
    )
    return basis + ":" + total.astype(str)


def _carry_over(previous: pd.DataFrame, rows: pd.DataFrame, version: str) -> tuple[pd.DataFrame, int]:
    """Keep the previous values of every customer whose own inputs did not change since the last scoring.

    Within one cutoff day a change to a few customers' data re-scores the shop (and may retrain the
    models), but only those customers' values are replaced: shop-wide side effects (ranks,
    retraining noise, shop-level features) wait for the next day's full refresh, so the push writes
    exactly the changed customers. `previous` and `rows` are the stored and the new rows of the same
    customers (one chunk). Returns the rows to store and how many customers were carried.
    """
    if previous.empty:
        return rows, 0
    old, new = _digests(previous), _digests(rows)
    same = new.index[new.eq(old.reindex(new.index)).to_numpy()]
    carried = previous[previous["profile_id"].isin(same)].assign(model_version=version)
    kept = rows[~rows["profile_id"].isin(same)]
    return pd.concat([kept, carried[kept.columns]], ignore_index=True), len(same)


def _digests(rows: pd.DataFrame) -> pd.Series:
    return rows.loc[rows["output"] == DIGEST_OUTPUT].set_index("profile_id")["value_text"]


def _read_rows(session: Session, index: int, n_chunks: int) -> pd.DataFrame:
    """The stored rows of chunk `index`'s customers."""
    columns = [getattr(tables.Score, c) for c in _SCORE_COLUMNS]
    statement = select(*columns).where(chunk_condition(tables.Score.profile_id, index, n_chunks))
    return pd.DataFrame(session.execute(statement).fetchall(), columns=list(_SCORE_COLUMNS))


def _kinds(frame: pd.DataFrame, output: str) -> Any:
    """The model behind each value: the core model's kind, the output's own kind column, or its method."""
    source = _KIND_OF.get(output, output)
    if output in _CORE:
        column = f"model_kind_{_model_of(output)}"
        column = column if column in frame else "model_kind"
    else:
        column = KIND_PREFIX + source
    default = _METHOD.get(source, "segments")
    kinds = frame.get(column, pd.Series(default, index=frame.index)).fillna(default).astype(str)
    return kinds.str.slice(0, KIND_MAX_CHARS).to_numpy()


def _reasons(frame: pd.DataFrame, output: str) -> Any:
    column = {"churn": "reasons_churn", "purchase": "reasons_purchase"}.get(_model_of(output), "")
    if output in _CORE and column in frame:
        return frame[column].map(lambda r: list(r) if isinstance(r, (list, tuple)) else None).to_numpy()
    text = frame.get("reason_" + output)
    if text is None:
        return pd.Series(None, index=frame.index, dtype=object).to_numpy()
    return text.map(lambda r: [r] if isinstance(r, str) else None).to_numpy()


def _model_of(output: str) -> str:
    if output.startswith("churn"):
        return "churn"
    if output in ("expected_orders",):
        return "orders"
    if output.startswith("clv") or output == "expected_spend":
        return "spend"
    return "purchase"


def _persist(
    engine: Engine,
    version: str,
    frame: pd.DataFrame,
    outputs: list[str],
    numeric: frozenset[str],
    now: datetime,
) -> int:
    """Write the scores of `version` chunk by chunk (one chunk's long rows at a time, the previous ones
    carried over where a customer's inputs did not change), then drop every other version: all in one
    transaction, so a half-written version is never read as complete. Returns the customers carried."""
    n_chunks = chunks_for_buyers(len(frame), PERSIST_CHUNK_CUSTOMERS)
    carried = 0
    with session_scope(engine) as session:
        for index in range(n_chunks):
            part = frame[chunk_members(frame["customer_id"], index, n_chunks)]
            new = _long_rows(part, outputs, numeric, version, now)
            rows, n = _carry_over(_read_rows(session, index, n_chunks), new, version)
            carried += n
            records = rows.astype(object).where(rows.notna(), None).to_dict("records")
            for start in range(0, len(records), 5_000):
                upsert(session, tables.Score, records[start : start + 5_000])
        session.execute(delete(tables.Score).where(tables.Score.model_version != version))
    return carried


def _previous_centroids(engine: Engine) -> pd.DataFrame | None:
    with Session(engine) as session:
        row = session.execute(
            select(tables.Model)
            .where(tables.Model.output == CENTROIDS_OUTPUT)
            .order_by(tables.Model.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    if row is None or not row.metrics or "centroids" not in row.metrics:
        return None
    centroids = pd.DataFrame(row.metrics["centroids"])
    centroids.index = centroids.index.astype("int64")
    centroids.index.name = "microsegment_id"
    return centroids


def _save_centroids(engine: Engine, version: str, centroids: pd.DataFrame, now: datetime) -> None:
    """Keep the latest centroids only: the next run matches against them, older ones have no use."""
    payload = {"centroids": {c: {str(i): float(v) for i, v in centroids[c].items()} for c in centroids}}
    with session_scope(engine) as session:
        session.execute(delete(tables.Model).where(tables.Model.output == CENTROIDS_OUTPUT))
        session.add(
            tables.Model(
                output=CENTROIDS_OUTPUT,
                version=version,
                kind="kmeans",
                features=list(centroids.columns),
                metrics=payload,
                promoted=True,
                created_at=now,
            )
        )


def score_store(
    engine: Engine,
    source_types: Mapping[str, str],
    settings: EngineConfig,
    now: datetime | None = None,
    segments: SegmentsConfig | None = None,
    schedule: ScheduleConfig | None = None,
    exclude: Collection[int] = (),
    inputs_changed: bool = True,
) -> ScoreReport:
    """Scores and segments for every known customer but the `exclude`d (people who did not consent,
    see sync/consent.py: none of their rows reach the engine); reuses stored scores when nothing changed.

    `inputs_changed=False` says the caller knows the store's inputs are as they were at the last
    scoring (a cycle whose pull wrote nothing after a completed one): the stored scores are reused
    without reading the frames, provided they were computed on the same basis (day and settings) and
    hold none of the `exclude`d. (Someone no longer excluded without any new data, e.g. after
    `privacy.score_without_consent` was switched on, is scored with the next change or the next day.)
    """
    now = now or datetime.now(UTC)
    segments = segments or SegmentsConfig()
    schedule = schedule or ScheduleConfig()
    cutoff = pd.Timestamp(now).tz_convert("UTC").floor("D")
    basis = _basis(cutoff, settings, segments)
    numeric = _numeric_outputs(segments)
    if not inputs_changed:
        same_basis = _version_on_basis(engine, basis)
        stored = _stored(engine, same_basis, numeric) if same_basis is not None else {}
        if stored and stored.keys().isdisjoint(exclude):
            return ScoreReport(same_basis or "", scored=len(stored), reused=True, scores=stored)
    n_chunks = chunks_for_store(engine, settings.chunk_customers)
    chunks = StoreChunks(engine, source_types, n_chunks, settings.sensitive_attributes, exclude=exclude)
    attributes = load_attributes(engine, PROFILE_ATTRIBUTES)
    source = _DigestedChunks(chunks, attributes, basis)
    specs = model_specs(PURCHASE_HORIZON_DAYS, settings.horizon_days)
    models = reusable_models(engine, specs, settings, schedule.retrain_every_days, now)
    stage = SegmentStage(_segment_inputs(engine, segments))
    gathered = gather_chunks(source, cutoff, models.models is None, observe=stage.gathered)
    report = ScoreReport(source.fingerprint())
    if chunks.report.dropped:  # pass one read every chunk once: counts of one read
        report.messages.append(f"rows dropped before scoring: {chunks.report.summary()}")
    stored = _stored(engine, report.version, numeric)
    if stored:
        report.reused, report.scores, report.scored = True, stored, len(stored)
        return report
    if not gathered.buyers:
        report.messages.append("no orders yet: every customer gets the fields' unknown values")
        return report
    stage.fit()
    result = _score(
        engine, source, gathered, stage, models, settings, schedule.retrain_every_days, now, report
    )
    extra = stage.outputs(result.scores, attributes)
    report.messages.extend(extra.messages)
    frame = result.scores.merge(extra.frame.reset_index(), on="customer_id", how="outer")
    frame[DIGEST_OUTPUT] = frame["customer_id"].map(source.input_digests())
    outputs = [f.output for f in available_outputs([(r.name, r.when) for r in segments.rules])]
    outputs = [o for o in (*outputs, DIGEST_OUTPUT) if o in frame]
    carried = _persist(engine, report.version, frame, outputs, numeric, now)
    if carried:
        report.messages.append(f"{carried} customers' inputs unchanged today: their values are kept")
    if extra.centroids is not None:
        _save_centroids(engine, report.version, extra.centroids, now)
    report.scores = _stored(engine, report.version, numeric)
    report.scored = len(report.scores)
    report.model_kind = str(result.scores["model_kind"].iloc[0]) if len(result.scores) else ""
    return report


def _score(
    engine: Engine,
    source: ChunkSource,
    gathered: GatheredShop,
    stage: SegmentStage,
    stored: Reusable,
    settings: EngineConfig,
    retrain_every_days: int,
    now: datetime,
    report: ScoreReport,
) -> ChunkedScoringResult:
    """Pass two: score with the promoted models while they are fresh, otherwise train on the gathered
    sample and store the new ones; every chunk's segment outputs are computed as it is scored."""
    with engine_backend(settings) as backend:
        result = score_gathered(
            source,
            gathered,
            horizon_days=PURCHASE_HORIZON_DAYS,
            churn_horizon_days=settings.horizon_days,
            config=TrainingConfig(min_buyers=settings.min_buyers),
            models=stored.models,
            backend=backend,
            scored=stage.scored,
        )
    report.messages.extend(result.messages)
    if stored.models is not None and stored.trained_at is not None:
        due = stored.trained_at + timedelta(days=retrain_every_days)
        report.messages.append(
            f"scored with models trained on {stored.trained_at:%Y-%m-%d}; next retrain {due:%Y-%m-%d}"
        )
        return result
    store_models(engine, result.models, report.version, settings, now)
    report.trained = list(result.models)
    due = now + timedelta(days=retrain_every_days)
    report.messages.append(f"models retrained: {stored.why_not}; next retrain {due:%Y-%m-%d}")
    log.info("event=models_retrained reason=%s", stored.why_not)
    return result


def _segment_inputs(engine: Engine, segments: SegmentsConfig) -> SegmentInputs:
    kinds = rule_field_kinds()
    return SegmentInputs(
        rules=[compile_rule(r.name, r.when, kinds) for r in segments.rules],
        control_share=segments.control_group.share,
        control_salt=segments.control_group.salt,
        previous_centroids=_previous_centroids(engine),
    )
